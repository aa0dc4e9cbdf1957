//! A yunji cloud in this process (scheduler and sim agents, from `yunji-tests`) and the
//! `yunji` binary run against it through a `clouds.yaml`.

// Each test binary uses part of this module.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::Output;

use yunji_tests::{ADMIN_PASSWORD, Options, TestContext};

pub struct Cloud {
    pub ctx: TestContext,
    pub clouds_yaml: PathBuf,
}

impl Cloud {
    pub async fn start(agents: usize) -> Cloud {
        let ctx = TestContext::new(Options {
            agents,
            ..Options::default()
        })
        .await;
        let clouds_yaml = ctx.dir.path().join("clouds.yaml");
        write_clouds_yaml(&clouds_yaml, "test", &ctx.url);
        Cloud { ctx, clouds_yaml }
    }

    /// Runs `yunji --os-cloud test ARGS…`.
    pub async fn yunji(&self, args: &[&str]) -> Output {
        yunji(&self.clouds_yaml, "test", args).await
    }
}

/// A clouds.yaml with the admin of the cloud at `url` as `name`.
pub fn write_clouds_yaml(path: &std::path::Path, name: &str, url: &str) {
    std::fs::write(
        path,
        format!(
            "clouds:\n  {name}:\n    auth:\n      auth_url: {url}/identity/v3\n      username: admin\n      password: {ADMIN_PASSWORD}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n"
        ),
    )
    .unwrap();
}

/// Runs the `yunji` binary with only this clouds.yaml in its environment.
pub async fn yunji(clouds_yaml: &std::path::Path, cloud: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_yunji"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OS_") {
            command.env_remove(key);
        }
    }
    command
        .env("OS_CLIENT_CONFIG_FILE", clouds_yaml)
        .env("NO_COLOR", "1")
        .arg("--os-cloud")
        .arg(cloud)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
