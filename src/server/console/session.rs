//! Console sessions: a random id in an HttpOnly cookie, and a second random token (CSRF)
//! that only the page can read (from a same-origin JSON response) and must echo in a
//! header or form field on every call that acts with the session.
//!
//! A cookie alone therefore grants nothing: a cross-site page can make the browser send
//! the cookie, but cannot read the token. Sessions live in memory, are bounded in number,
//! and expire [`SESSION_TTL`] after they were created; a server restart logs everyone out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; when full, expired ones are dropped, then the oldest.
pub const MAX_SESSIONS: usize = 10_000;

/// One session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The `userKey` that logged in; `None` for an open console (no credentials configured).
    pub user: Option<String>,
    /// The token the page must echo.
    pub csrf: String,
    created: Instant,
}

/// The live sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns its id (the cookie value) and the session.
    pub fn create(&self, user: Option<String>) -> (String, Session) {
        let id = token();
        let session = Session {
            user,
            csrf: token(),
            created: Instant::now(),
        };
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session named by `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(id) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// The session named by `id` when `csrf` is its token.
    pub fn check(&self, id: &str, csrf: &str) -> Option<Session> {
        self.get(id)
            .filter(|s| constant_time_eq(s.csrf.as_bytes(), csrf.as_bytes()))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// 256 random bits as hex.
fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_needs_its_token() {
        let sessions = Sessions::default();
        let (id, s) = sessions.create(Some("K".into()));
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        assert!(sessions.check(&id, &s.csrf).is_some());
        assert!(sessions.check(&id, "").is_none());
        assert!(sessions.check(&id, &id).is_none());
        assert!(sessions.check(&s.csrf, &s.csrf).is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::default();
        let (first, _) = sessions.create(None);
        for _ in 0..MAX_SESSIONS {
            sessions.create(None);
        }
        assert!(sessions.get(&first).is_none(), "the oldest was dropped");
        assert_eq!(sessions.map.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn equality_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
