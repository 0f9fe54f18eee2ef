//! Websocket binding tokens (`$get-ws-binding-token`): a random token, kept in the store for
//! a few minutes, that a websocket client sends as `bind-with-token <token>` to receive the
//! notifications of the subscriptions it names. Any server on the store accepts it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use repository::RepositoryError;
use serde_json::{Value, json};
use store::Store;

const TOKEN_PREFIX: &str = "notify/ws-token/";

/// How long a token may be bound with (microseconds).
pub const TOKEN_LIFETIME: i64 = 5 * 60 * 1_000_000;

/// Makes a token for `subscriptions`, valid until the instant returned.
pub fn issue(
    store: &dyn Store,
    subscriptions: &[String],
    now: i64,
) -> Result<(String, i64), RepositoryError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        RepositoryError::Internal(format!("no randomness for a binding token: {e}"))
    })?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let expires = now + TOKEN_LIFETIME;
    let mut tx = store.begin()?;
    tx.set_checkpoint(
        &format!("{TOKEN_PREFIX}{token}"),
        Some(&json!({"subscriptions": subscriptions, "expires": expires}).to_string()),
    )?;
    tx.commit()?;
    Ok((token, expires))
}

/// The subscriptions a token binds, if it is known and not expired.
pub fn bind(
    store: &dyn Store,
    token: &str,
    now: i64,
) -> Result<Option<Vec<String>>, RepositoryError> {
    if token.is_empty()
        || token.len() > 100
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let Some(value) = store.checkpoint(&format!("{TOKEN_PREFIX}{token}"))? else {
        return Ok(None);
    };
    let Ok(value) = serde_json::from_str::<Value>(&value) else {
        return Ok(None);
    };
    if value
        .get("expires")
        .and_then(Value::as_i64)
        .is_none_or(|e| e < now)
    {
        return Ok(None);
    }
    Ok(Some(
        value
            .get("subscriptions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    ))
}
