//! Version history in PostgreSQL (layout 2): `quire_versions` (a record as JSON and the packed
//! state, per document and id) and `quire_authors` (who wrote under a Yjs client id).
//!
//! Which process takes a document's automatic version is settled in Redis (see
//! [`ClusterStore::claim_version`](super::ClusterStore)); the primary key makes a version id
//! taken twice (two processes naming a version in the same millisecond) fail cleanly, and the
//! document task then tries the next id.

use quire_model::DocId;

use super::postgres::Postgres;
use crate::store::history::{Author, VersionPage, VersionRecord};
use crate::store::StoreError;

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(doc: &DocId, value: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("history of {doc}: {e}")))
}

/// Ids are milliseconds and client ids 53-bit: both fit a bigint, and `as` is exact both ways.
fn big(n: u64) -> i64 {
    n as i64
}

impl Postgres {
    pub async fn put_version(&self, doc: &DocId, record: &VersionRecord, state: &[u8]) -> Result<bool, StoreError> {
        let json = to_json(record)?;
        let id = big(record.id);
        let written = self
            .with(|client| async move {
                client
                    .execute(
                        "INSERT INTO quire_versions (doc, id, record, state) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (doc, id) DO NOTHING",
                        &[&doc.as_str(), &id, &json, &state],
                    )
                    .await
            })
            .await?;
        Ok(written == 1)
    }

    pub async fn update_version(&self, doc: &DocId, record: &VersionRecord) -> Result<bool, StoreError> {
        let json = to_json(record)?;
        let id = big(record.id);
        let updated = self
            .with(|client| async move {
                client
                    .execute("UPDATE quire_versions SET record = $3 WHERE doc = $1 AND id = $2", &[&doc.as_str(), &id, &json])
                    .await
            })
            .await?;
        Ok(updated == 1)
    }

    pub async fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError> {
        let ids: Vec<i64> = ids.iter().copied().map(big).collect();
        self.with(|client| async move {
            client
                .execute("DELETE FROM quire_versions WHERE doc = $1 AND id = ANY($2)", &[&doc.as_str(), &ids])
                .await
        })
        .await
        .map(drop)
    }

    pub async fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError> {
        let (limit, offset) = (limit.min(i64::MAX as usize) as i64, offset.min(i64::MAX as usize) as i64);
        let (total, rows) = self
            .with(|client| async move {
                let total: i64 = client
                    .query_one("SELECT count(*) FROM quire_versions WHERE doc = $1", &[&doc.as_str()])
                    .await?
                    .get(0);
                let rows = client
                    .query(
                        "SELECT record FROM quire_versions WHERE doc = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
                        &[&doc.as_str(), &limit, &offset],
                    )
                    .await?;
                Ok((total, rows))
            })
            .await?;
        let versions = rows.into_iter().map(|row| from_json(doc, row.get(0))).collect::<Result<_, _>>()?;
        Ok(VersionPage { versions, total: total as u64 })
    }

    pub async fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let id = big(id);
        let row = self
            .with(|client| async move {
                client
                    .query_opt("SELECT state FROM quire_versions WHERE doc = $1 AND id = $2", &[&doc.as_str(), &id])
                    .await
            })
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    pub async fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError> {
        let clients: Vec<i64> = authors.iter().map(|(client, _)| big(*client)).collect();
        let records = authors.iter().map(|(_, author)| to_json(author)).collect::<Result<Vec<_>, _>>()?;
        self.with(|client| async move {
            client
                .execute(
                    "INSERT INTO quire_authors (doc, client, author) SELECT $1, * FROM unnest($2::bigint[], $3::jsonb[])
                     ON CONFLICT (doc, client) DO UPDATE SET author = EXCLUDED.author",
                    &[&doc.as_str(), &clients, &records],
                )
                .await
        })
        .await
        .map(drop)
    }

    pub async fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError> {
        let rows = self
            .with(|client| async move {
                client.query("SELECT client, author FROM quire_authors WHERE doc = $1 ORDER BY client", &[&doc.as_str()]).await
            })
            .await?;
        rows.into_iter()
            .map(|row| Ok((row.get::<_, i64>(0) as u64, from_json(doc, row.get(1))?)))
            .collect()
    }
}
