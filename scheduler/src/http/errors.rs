//! Errors on the wire: each service answers in its own OpenStack error body, with a
//! message a person can act on. Internal detail is logged, never returned.

use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::core::{Error, error_chain};

/// Which service's error body to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Identity,
    Compute,
    Image,
    Network,
    Volume,
    LoadBalancer,
    /// The agent join endpoint and unknown prefixes.
    Other,
}

impl Service {
    /// The service a path's first segment names (`/` is identity's discovery).
    pub fn of_path(first: Option<&str>) -> Service {
        match first {
            None | Some("identity") => Service::Identity,
            Some("compute") => Service::Compute,
            Some("image") => Service::Image,
            Some("network") => Service::Network,
            Some("volume") => Service::Volume,
            Some("load-balancer") => Service::LoadBalancer,
            Some(_) => Service::Other,
        }
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Neutron's exception name (`NetworkNotFound`, `OverQuota`, …); when unset, the
    /// `type` is `HTTP` plus the reason phrase.
    pub neutron_type: Option<&'static str>,
    /// The methods a path takes, sent as `Allow` with a 405.
    pub allow: Option<HeaderValue>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            neutron_type: None,
            allow: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A request the route table admitted but no handler serves: the table lists a
    /// route the routers lack, which the route test catches.
    pub fn unrouted(req: &super::ApiRequest) -> ApiError {
        ApiError::not_found(format!(
            "{} {} is in the route table, but no handler serves it",
            req.method, req.path
        ))
    }

    /// Renders the error in `service`'s body shape.
    pub fn into_response(self, service: Service) -> super::Response {
        let code = self.status.as_u16();
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = match service {
            Service::Identity | Service::Other => {
                json!({"error": {"code": code, "title": title, "message": self.message}})
            }
            Service::Compute | Service::Volume => {
                let key = match self.status {
                    StatusCode::BAD_REQUEST => "badRequest",
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::FORBIDDEN => "forbidden",
                    StatusCode::NOT_FOUND => "itemNotFound",
                    StatusCode::METHOD_NOT_ALLOWED => "badMethod",
                    StatusCode::NOT_ACCEPTABLE => "notAcceptable",
                    StatusCode::CONFLICT => "conflictingRequest",
                    StatusCode::PAYLOAD_TOO_LARGE => "overLimit",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "mediaTypeNotSupported",
                    _ => "computeFault",
                };
                json!({ key: {"code": code, "message": self.message} })
            }
            Service::Network => json!({"NeutronError": {
                "type": self.neutron_type.map_or_else(
                    || format!("HTTP{}", title.replace(' ', "")),
                    str::to_string,
                ),
                "message": self.message,
                "detail": "",
            }}),
            Service::Image => json!({"code": code, "title": title, "message": self.message}),
            Service::LoadBalancer => json!({
                "faultcode": if self.status.is_client_error() { "Client" } else { "Server" },
                "faultstring": self.message,
                "debuginfo": null,
            }),
        };
        let mut response = super::json_response(self.status, &body);
        if let Some(allow) = self.allow {
            response.headers_mut().insert(http::header::ALLOW, allow);
        }
        if self.status == StatusCode::UNAUTHORIZED && service == Service::Identity {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity/v3\""),
            );
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::OverQuota(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Internal(inner) => {
                tracing::error!(error = %error_chain(inner.as_ref()), "internal error");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The cloud hit an internal error; the operator can find it in the \
                     scheduler's log by this response's X-Openstack-Request-Id.",
                );
            }
        };
        ApiError::new(status, e.to_string())
    }
}
