//! The end of a run: are two states of a document the same document?

use quire_model::protocol;
use quire_model::schema::{new_doc, CONTENT, META, TITLE};
use yrs::types::text::YChange;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};

/// What a person and a replica see of a document: its items (state vector), text, formatting
/// and title.
#[derive(Debug, PartialEq)]
pub struct View {
    pub state_vector: Vec<(u64, u32)>,
    pub text: String,
    pub delta: String,
    pub title: Option<String>,
}

impl View {
    pub fn of(doc: &Doc) -> View {
        let (text, meta) = (doc.get_or_insert_text(CONTENT), doc.get_or_insert_map(META));
        let txn = doc.transact();
        let mut state_vector: Vec<(u64, u32)> = txn.state_vector().iter().map(|(c, &k)| (c.get(), k)).collect();
        state_vector.sort_unstable();
        View {
            state_vector,
            text: text.get_string(&txn),
            delta: format!("{:?}", text.diff(&txn, YChange::identity)),
            title: meta.get(&txn, TITLE).map(|v| v.to_string(&txn)),
        }
    }
}

/// A document holding `state` (a v1 update), or why it cannot be built.
pub fn load(state: &[u8]) -> Result<Doc, String> {
    let doc = new_doc();
    protocol::apply_bytes(&doc, state).map_err(|e| format!("the state does not apply: {e}"))?;
    let txn = doc.transact();
    if txn.has_missing_updates() {
        let store = txn.store();
        return Err(format!(
            "the state has changes whose dependencies it lacks: items {:?}, deletions {:?}",
            store.pending_update().map(|p| &p.missing),
            store.pending_ds()
        ));
    }
    drop(txn);
    Ok(doc)
}

/// Whether `a` and `b` (v1 updates of whole states) are the same document: the same view,
/// and neither holds an item or a deletion the other lacks.
pub fn same(a: &[u8], b: &[u8]) -> Result<(), String> {
    let (doc_a, doc_b) = (load(a)?, load(b)?);
    let (view_a, view_b) = (View::of(&doc_a), View::of(&doc_b));
    if view_a != view_b {
        return Err(format!(
            "they differ ({}):\n  {}\n  {}",
            differences(&view_a, &view_b),
            summary(&view_a),
            summary(&view_b)
        ));
    }
    for (from, into, what) in [(a, &doc_b, "the first"), (b, &doc_a, "the second")] {
        if protocol::apply_bytes(into, from).map_err(|e| e.to_string())?.is_some() {
            return Err(format!("{what} holds changes the other lacks (same text, other items or deletions)"));
        }
    }
    Ok(())
}

/// Items `client` made, as far as `state` holds them.
pub fn clock_of(state: &[u8], client: u64) -> Result<u32, String> {
    let doc = load(state)?;
    let sv: StateVector = doc.transact().state_vector();
    Ok(sv.get(&yrs::ClientID::new(client)))
}

/// Which parts of two views differ, and where: what a report needs to find the frame behind it.
fn differences(a: &View, b: &View) -> String {
    let mut found = Vec::new();
    if a.state_vector != b.state_vector {
        let only = |x: &View, y: &View| x.state_vector.iter().filter(|e| !y.state_vector.contains(e)).take(4).cloned().collect::<Vec<_>>();
        found.push(format!("state vectors: first has {:?}, second has {:?}", only(a, b), only(b, a)));
    }
    for (what, x, y) in [("text", &a.text, &b.text), ("formatting", &a.delta, &b.delta)] {
        if x != y {
            let at = x.chars().zip(y.chars()).take_while(|(c, d)| c == d).count();
            let around = |s: &str| s.chars().skip(at.saturating_sub(20)).take(60).collect::<String>();
            found.push(format!("{what} from char {at}: {:?} / {:?}", around(x), around(y)));
        }
    }
    if a.title != b.title {
        found.push(format!("titles {:?} / {:?}", a.title, b.title));
    }
    found.join("; ")
}

fn summary(view: &View) -> String {
    let text: String = view.text.chars().take(80).collect();
    format!(
        "{} chars {:?}…, title {:?}, clients {:?}",
        view.text.chars().count(),
        text,
        view.title,
        view.state_vector.iter().take(8).collect::<Vec<_>>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_model::schema::doc_with_client_id;
    use yrs::types::Attrs;

    #[test]
    fn a_difference_in_formatting_alone_is_shown_where_it_is() {
        let plain = doc_with_client_id(7);
        plain.get_or_insert_text(CONTENT).insert(&mut plain.transact_mut(), 0, "same words here");
        let bold = doc_with_client_id(8);
        protocol::apply_bytes(&bold, &protocol::full_state(&plain)).unwrap();
        let attrs = Attrs::from([("bold".into(), yrs::Any::Bool(true))]);
        bold.get_or_insert_text(CONTENT).format(&mut bold.transact_mut(), 5, 5, attrs);
        let error = same(&protocol::full_state(&plain), &protocol::full_state(&bold)).unwrap_err();
        assert!(error.contains("formatting from char"), "{error}");
        assert!(error.contains("state vectors"), "{error}");
        assert!(!error.contains("text from"), "{error}");
    }
}
