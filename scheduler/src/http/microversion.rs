//! Microversions (compute and block storage): what the client asked for, checked against
//! what is implemented exactly, and echoed on the response as Tempest expects.

use http::{HeaderValue, StatusCode};

use super::{ApiError, ApiRequest, Response};

/// A microversion, e.g. 2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion {
    pub major: u16,
    pub minor: u16,
}

impl Microversion {
    pub const fn new(major: u16, minor: u16) -> Microversion {
        Microversion { major, minor }
    }

    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= Microversion::new(major, minor)
    }

    fn parse(s: &str) -> Option<Microversion> {
        let (major, minor) = s.trim().split_once('.')?;
        Some(Microversion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One service's microversion range and headers.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// The service name in `OpenStack-API-Version: <service> <version>`.
    pub service: &'static str,
    /// A legacy header also read and echoed (`X-OpenStack-Nova-API-Version`).
    pub legacy_header: Option<&'static str>,
    pub min: Microversion,
    pub max: Microversion,
}

impl Range {
    /// The version a request asks for: none means the minimum, `latest` the maximum;
    /// malformed is 400, out of range 406.
    pub fn negotiate(&self, req: &ApiRequest) -> Result<Microversion, ApiError> {
        let asked = req
            .headers
            .get_all("openstack-api-version")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|v| {
                let mut words = v.split_whitespace();
                (words.next()?.eq_ignore_ascii_case(self.service))
                    .then(|| words.next().unwrap_or("").to_string())
            })
            .or_else(|| {
                self.legacy_header
                    .and_then(|h| req.header(h))
                    .map(str::to_string)
            });
        let Some(asked) = asked else {
            return Ok(self.min);
        };
        if asked.eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let version = Microversion::parse(&asked).ok_or_else(|| {
            ApiError::bad_request(format!(
                "microversion {asked:?} is malformed; use MAJOR.MINOR or latest"
            ))
        })?;
        if version < self.min || version > self.max {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "version {version} is not supported by the API; this cloud offers {} to {}",
                    self.min, self.max
                ),
            ));
        }
        Ok(version)
    }

    /// Adds the echo and `Vary` headers.
    pub fn echo(&self, version: Microversion, response: &mut Response) {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("{} {version}", self.service)) {
            headers.insert("openstack-api-version", v);
        }
        let mut vary = String::from("OpenStack-API-Version");
        if let Some(legacy) = self.legacy_header {
            if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
                headers.insert(legacy, v);
            }
            vary.push_str(", ");
            vary.push_str(legacy);
        }
        if let Ok(v) = HeaderValue::from_str(&vary) {
            headers.insert(http::header::VARY, v);
        }
    }
}
