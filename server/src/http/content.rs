//! `/api/docs/{id}/content` and `/api/docs/{id}/updates`: export and import a document's body.
//!
//! Every import is served by the document task in order with the edits of connected clients,
//! so it reaches open editors live, as an ordinary edit. An import that does not parse changes
//! nothing: the task parses before it touches the document.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::Bytes;
use quire_model::convert::Format;
use serde::Deserialize;
use utoipa::IntoParams;
use yrs::updates::decoder::Decode;
use yrs::StateVector;

use super::access::{Editor, Viewer};
use super::docs::TextFormat;
use super::openapi::ErrorBody;
use crate::error::ApiError;
use crate::state::AppState;

/// The media type of a binary Yjs update, both ways.
pub(super) const YJS_MIME: &str = "application/octet-stream";
/// Standard base64 with or without padding: URL-safe input is mapped onto this alphabet first.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `markdown` (default), `html`, `text`, `delta` (Quill Delta JSON) or `yjs` (a binary Yjs
    /// update).
    #[param(inline)]
    format: Option<ExportFormat>,
    /// Only with `format=yjs`: the update encoding, `v1` (default) or `v2`.
    #[param(inline)]
    encoding: Option<YjsEncoding>,
    /// Only with `format=yjs`: a Yjs state vector (v1), base64 standard or URL-safe, padded or
    /// not; the update then holds only what that state lacks.
    since: Option<String>,
}

/// A binary Yjs update (lib0 encoding). Only names the schema: `Vec<u8>` itself would be
/// documented as an array of integers.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "never built: it only describes a body")]
pub struct YjsUpdate(Vec<u8>);

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Markdown,
    Html,
    Text,
    Delta,
    Yjs,
}

impl ExportFormat {
    /// The text format it names; `None` for the Yjs update.
    pub fn text(self) -> Option<TextFormat> {
        match self {
            ExportFormat::Markdown => Some(TextFormat::Markdown),
            ExportFormat::Html => Some(TextFormat::Html),
            ExportFormat::Text => Some(TextFormat::Text),
            ExportFormat::Delta => Some(TextFormat::Delta),
            ExportFormat::Yjs => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum YjsEncoding {
    V1,
    V2,
}

/// Export a document's body
///
/// As Markdown, HTML, plain text, Quill Delta JSON, or a binary Yjs update. Exports never carry
/// active content: HTML is escaped semantic markup, and every export is served with
/// `Content-Security-Policy: default-src 'none'; sandbox` and `X-Content-Type-Options: nosniff`.
#[utoipa::path(
    get,
    path = "/api/docs/{id}/content",
    tag = "content",
    params(("id" = String, Path, description = "Document id"), ExportQuery),
    responses(
        (status = 200, description = "The body in the requested format", content(
            (String = "text/markdown"),
            (String = "text/html"),
            (String = "text/plain"),
            (Object = "application/json"),
            (YjsUpdate = "application/octet-stream"),
        )),
        (status = 400, description = "Bad id, format, encoding or state vector", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    )
)]
pub async fn export(
    State(app): State<AppState>,
    access: Viewer,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let (body, mime) = match query.format.unwrap_or(ExportFormat::Markdown).text() {
        Some(text_format) => {
            // A mistake worth saying: these would otherwise be silently ignored.
            if query.encoding.is_some() || query.since.is_some() {
                return Err(ApiError::BadRequest(
                    "`encoding` and `since` apply only to format=yjs".into(),
                ));
            }
            let format = Format::from(text_format);
            (Bytes::from(app.docs.export(&access.id, format).await?), format.mime_type())
        }
        None => {
            let since = match &query.since {
                Some(encoded) => decode_state_vector(encoded)?,
                None => StateVector::default(),
            };
            let v2 = matches!(query.encoding, Some(YjsEncoding::V2));
            (Bytes::from(app.docs.export_yjs(&access.id, v2, &since).await?), YJS_MIME)
        }
    };
    Ok(exported(body, mime))
}

/// An export as served: its type, and nothing in it may run.
pub(super) fn exported(body: Bytes, mime: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // An export opened straight from this URL must not run or load anything, even if an
    // exporter ever let markup through; nor may a browser guess a more active type.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Reads a base64 state vector, standard or URL-safe, padded or not. A `+` that arrived as a
/// space (an unescaped `+` in a query string means a space) is read as the `+` it was.
fn decode_state_vector(encoded: &str) -> Result<StateVector, ApiError> {
    let bad = |why: String| ApiError::BadRequest(format!("bad `since` state vector: {why}"));
    let standard: String = encoded
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' | ' ' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = STANDARD_ANY_PADDING
        .decode(standard)
        .map_err(|e| bad(format!("not base64: {e}")))?;
    // The count leads the encoding, and each entry takes at least two bytes: refuse a count
    // the input cannot hold before yrs reserves room for it (a few bytes can declare four
    // billion entries).
    let (count, rest) = read_var_u32(&bytes).ok_or_else(|| bad("truncated".into()))?;
    if count as usize > rest / 2 {
        return Err(bad("truncated".into()));
    }
    StateVector::decode_v1(&bytes).map_err(|e| bad(e.to_string()))
}

/// The leading unsigned LEB128 varint (lib0's encoding) and how many bytes follow it.
fn read_var_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(5) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((u32::try_from(value).ok()?, bytes.len() - i - 1));
        }
    }
    None
}

/// Replace a document's body
///
/// The format is the request's `Content-Type`: `text/markdown`, `text/html`, `text/plain`,
/// `application/json` (Quill Delta), all UTF-8; or `application/octet-stream`, a v1 Yjs update,
/// which is merged (a CRDT update cannot remove what it does not know). Connected clients see
/// the change live.
#[utoipa::path(
    put,
    path = "/api/docs/{id}/content",
    tag = "content",
    params(("id" = String, Path, description = "Document id")),
    request_body(content(
        (String = "text/markdown"),
        (String = "text/html"),
        (String = "text/plain"),
        (Object = "application/json"),
        (YjsUpdate = "application/octet-stream"),
    )),
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "Bad id, a body that is not UTF-8, or content that does not parse", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 413, description = "Body over the server's limit", body = ErrorBody),
        (status = 415, description = "Missing or unsupported `Content-Type`", body = ErrorBody),
        (status = 422, description = "A Yjs update that does not decode or apply", body = ErrorBody),
    )
)]
pub async fn replace(
    State(app): State<AppState>,
    access: Editor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|e| ApiError::from_body_rejection(e, app.shared.config.max_message_bytes))?;
    let content_type = content_type(&headers)?;
    if is_yjs(content_type) {
        app.docs.apply_update(&access.id, body).await?;
    } else {
        let format = Format::from_mime(content_type).ok_or_else(|| unsupported(content_type))?;
        check_charset(content_type)?;
        let text = std::str::from_utf8(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
        app.docs.replace(&access.id, format, text.into()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Merge a Yjs update
///
/// A binary v1 Yjs update, as a Yjs client would send it; connected clients receive it live.
#[utoipa::path(
    post,
    path = "/api/docs/{id}/updates",
    tag = "content",
    params(("id" = String, Path, description = "Document id")),
    request_body(content = YjsUpdate, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Merged"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 413, description = "Body over the server's limit", body = ErrorBody),
        (status = 415, description = "A `Content-Type` other than `application/octet-stream`", body = ErrorBody),
        (status = 422, description = "An update that does not decode or apply", body = ErrorBody),
    )
)]
pub async fn merge_update(
    State(app): State<AppState>,
    access: Editor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|e| ApiError::from_body_rejection(e, app.shared.config.max_message_bytes))?;
    // No Content-Type is fine here (there is only one thing this route takes); a wrong one is
    // likely a client that meant to PUT text.
    if headers.contains_key(header::CONTENT_TYPE) {
        let content_type = content_type(&headers)?;
        if !is_yjs(content_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "`{content_type}`; expected {YJS_MIME} (a Yjs update)"
            )));
        }
    }
    app.docs.apply_update(&access.id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn content_type(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::CONTENT_TYPE).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!("a Content-Type is required: {ACCEPTED}"))
    })?;
    value
        .to_str()
        .map_err(|_| ApiError::UnsupportedMediaType("unreadable Content-Type".into()))
}

const ACCEPTED: &str =
    "text/markdown, text/html, text/plain, application/json (Quill Delta) or application/octet-stream (Yjs update)";

fn unsupported(content_type: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!("`{content_type}`; expected {ACCEPTED}"))
}

fn is_yjs(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(YJS_MIME)
}

/// Text comes in UTF-8 (or its subset ASCII); a body declared in another charset would be
/// misread, so it is refused rather than guessed at.
fn check_charset(content_type: &str) -> Result<(), ApiError> {
    let charset = content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    });
    match charset {
        None => Ok(()),
        Some(c)
            if ["utf-8", "utf8", "us-ascii"]
                .iter()
                .any(|ok| c.eq_ignore_ascii_case(ok)) =>
        {
            Ok(())
        }
        Some(c) => Err(ApiError::UnsupportedMediaType(format!(
            "charset `{c}`: only UTF-8 is accepted"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn some_state_vector() -> Vec<u8> {
        let doc = Doc::with_client_id(0xfb_ff_ff);
        let text = doc.get_or_insert_text("content");
        text.insert(&mut doc.transact_mut(), 0, "hello");
        let state_vector = doc.transact().state_vector();
        state_vector.encode_v1()
    }

    #[test]
    fn state_vectors_decode_from_every_base64_flavour() {
        let raw = some_state_vector();
        let expected = StateVector::decode_v1(&raw).unwrap();
        let standard = base64::engine::general_purpose::STANDARD.encode(&raw);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        assert!(standard.contains('+') || standard.contains('/') || standard.ends_with('='));
        for encoded in [standard.clone(), url_safe, standard.replace('+', " ")] {
            assert_eq!(
                decode_state_vector(&encoded).unwrap(),
                expected,
                "{encoded}"
            );
        }
    }

    #[test]
    fn bad_state_vectors_are_refused_before_decoding() {
        for bad in ["!!!", "", "/////w", "gICAgA8"] {
            let err = decode_state_vector(bad).unwrap_err();
            assert!(matches!(err, ApiError::BadRequest(_)), "{bad}: {err:?}");
        }
    }

    #[test]
    fn only_utf8_charsets_pass() {
        assert!(check_charset("text/plain").is_ok());
        assert!(check_charset("text/plain; charset=UTF-8").is_ok());
        assert!(check_charset("text/plain; charset=\"utf-8\"").is_ok());
        assert!(check_charset("text/plain; charset=iso-8859-1").is_err());
    }
}
