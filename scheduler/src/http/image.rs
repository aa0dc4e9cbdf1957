//! Glance v2 (clause B.2.3): images, their data, members and tags.

use super::{ApiRequest, ApiResult};
use crate::core::Core;

pub async fn route(core: &Core, req: ApiRequest) -> ApiResult {
    super::discovery::image(core, &req)
}
