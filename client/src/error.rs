//! What can go wrong talking to a cloud, in words a user can act on.

use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is missing or inconsistent; nothing was sent.
    #[error("configuration: {0}")]
    Config(String),
    /// The identity service refused the credentials.
    #[error("authentication failed at {url}: {message}")]
    Auth { url: String, message: String },
    /// The cloud has no such service (or region) in its catalog.
    #[error("the cloud offers no {service} service{region} (its catalog has: {offered})")]
    NoEndpoint {
        service: String,
        region: String,
        offered: String,
    },
    /// The request never got an HTTP answer.
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The cloud answered with an error status.
    #[error("{method} {url} answered {status}: {message}")]
    Api {
        method: String,
        url: String,
        status: StatusCode,
        message: String,
    },
    /// The cloud answered, but not with what the API reference says.
    #[error("{method} {url}: unexpected reply: {message}")]
    Decode {
        method: String,
        url: String,
        message: String,
    },
    /// A name matched nothing, or more than one resource.
    #[error("{0}")]
    Lookup(String),
    /// Waiting for a state took too long, or the resource went to an error state.
    #[error("{0}")]
    Wait(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// The human message in an OpenStack error body, whichever service wrote it: Nova
/// `{"itemNotFound": {"message"}}`, Neutron `{"NeutronError": {"message"}}`, Keystone
/// `{"error": {"message"}}`, Octavia `{"faultstring"}`, Glance's plain text.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let find = |v: &serde_json::Value| {
            ["message", "faultstring", "description", "detail"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        };
        if let Some(m) = find(&value) {
            return m;
        }
        if let Some(m) = value.as_object().and_then(|o| o.values().find_map(find)) {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no message)".into()
    } else {
        text.chars().take(500).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn finds_each_services_message() {
        assert_eq!(
            error_message(
                br#"{"itemNotFound":{"code":404,"message":"Server x could not be found."}}"#
            ),
            "Server x could not be found."
        );
        assert_eq!(
            error_message(br#"{"NeutronError":{"type":"X","message":"m","detail":""}}"#),
            "m"
        );
        assert_eq!(error_message(br#"{"faultstring":"lb gone"}"#), "lb gone");
        assert_eq!(error_message(b"404 Not Found\n"), "404 Not Found");
        assert_eq!(error_message(b""), "(no message)");
    }
}
