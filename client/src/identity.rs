//! Identity (Keystone v3): the token (B.1.1) and regions, the standard's data centres (B.1.2).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Client, Error, Extra, Service};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The token this client holds, as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub expires: String,
    pub project_id: String,
    pub user_id: String,
}

impl Client {
    pub async fn regions(&self) -> Result<Vec<Region>, Error> {
        self.get(Service::Identity, "/regions", "regions").await
    }

    pub fn token_info(&self) -> TokenInfo {
        let field = |pointer: &str| {
            self.token_body()
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        TokenInfo {
            id: self.token().to_owned(),
            expires: field("/expires_at"),
            project_id: field("/project/id"),
            user_id: field("/user/id"),
        }
    }
}
