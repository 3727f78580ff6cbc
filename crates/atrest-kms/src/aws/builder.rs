//! [`AwsKmsBuilder`]: where KMS is, how long to wait, how often to retry, the data-key cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atrest_envelope::cache::{CacheLimits, CachingWrapper};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::Client;
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_kms::error::BoxError;

use super::client::{AwsKms, bridge};
use super::error::{AwsKmsError, Failure, FailureKind, Operation};

/// The behaviour version of the SDK defaults this crate was written against (retries on by
/// default, 3.1 s connect timeout; both are set explicitly anyway).
fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// Configures an [`AwsKms`] client: where KMS is, how long to wait, how often to retry,
/// and the data-key cache.
///
/// Without [`AwsKmsBuilder::sdk_config`], the SDK's standard chain is loaded: `AWS_REGION`
/// (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KMS`, credentials from
/// the environment, profile files, web identity (EKS), ECS or EC2 instance metadata.
#[derive(Clone)]
pub struct AwsKmsBuilder {
    sdk_config: Option<SdkConfig>,
    endpoint_url: Option<String>,
    region: Option<String>,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    operation_timeout: Duration,
    cache_limits: CacheLimits,
}

impl Default for AwsKmsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AwsKmsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK config (and its credentials provider) is left out on purpose.
        f.debug_struct("AwsKmsBuilder")
            .field("sdk_config", &self.sdk_config.as_ref().map(|_| "[given]"))
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("cache_limits", &self.cache_limits)
            .finish()
    }
}

impl AwsKmsBuilder {
    /// Attempts per operation, the first included (standard retry mode).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// The first retry waits a random time up to this (then doubling, up to the maximum).
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
    /// The longest wait before a retry.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
    /// Establishing a connection (TCP and TLS).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
    /// One HTTP attempt, from sending the request to the end of the answer.
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
    /// One operation, all attempts and backoff included: the longest a call blocks.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

    /// The defaults: configuration from the environment, 3 attempts, the timeouts above,
    /// [`CacheLimits::default`].
    pub fn new() -> Self {
        Self {
            sdk_config: None,
            endpoint_url: None,
            region: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: Self::DEFAULT_ATTEMPT_TIMEOUT,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            cache_limits: CacheLimits::default(),
        }
    }

    /// Uses an SDK configuration loaded by the application (`aws_config::defaults(..).load()`)
    /// instead of loading one. Its retry and timeout settings are replaced by this builder's.
    #[must_use]
    pub fn sdk_config(mut self, config: SdkConfig) -> Self {
        self.sdk_config = Some(config);
        self
    }

    /// The KMS endpoint, e.g. a VPC endpoint or a KMS-compatible server
    /// (`http://127.0.0.1:4566`). Default: from the configuration, else AWS's regional one.
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// The AWS region (`eu-west-1`). Default: from the configuration.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Attempts per operation, the first included (at least 1). Throttling, 5xx answers,
    /// timeouts and connection failures are retried with exponential backoff and jitter.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Backoff between attempts: the first retry waits a random time up to `initial`, then
    /// the bound doubles per retry up to `max`.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The connect timeout (TCP and TLS handshake).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The timeout of one HTTP attempt.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The timeout of a whole operation, retries included: no call blocks longer.
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The data-key cache limits used by [`AwsKmsBuilder::build`].
    #[must_use]
    pub fn cache_limits(mut self, limits: CacheLimits) -> Self {
        self.cache_limits = limits;
        self
    }

    /// The client wrapped in a data-key cache ([`CachingWrapper`], with
    /// [`AwsKmsBuilder::cache_limits`]): the recommended form, so KMS is not called once per
    /// blob. `cached.inner()` is the [`AwsKms`] client (its call counts, its root key).
    ///
    /// # Errors
    /// As [`AwsKmsBuilder::build_uncached`].
    pub fn build(self) -> Result<CachingWrapper<AwsKms>, AwsKmsError> {
        let limits = self.cache_limits;
        Ok(CachingWrapper::new(self.build_uncached()?, limits))
    }

    /// The client without a cache: every seal calls `GenerateDataKey` and every open calls
    /// `Decrypt`.
    ///
    /// # Errors
    /// [`AwsKmsError`] with [`FailureKind::Client`] if the runtime cannot start or no region
    /// is configured. Credentials are checked on the first call, not here.
    pub fn build_uncached(self) -> Result<AwsKms, AwsKmsError> {
        let configured = self.endpoint_url.clone();
        let config_error = |detail: String| {
            AwsKmsError::new(
                configured.as_deref().unwrap_or("(default endpoint)"),
                Operation::Configure,
                None,
                Failure::new(FailureKind::Client, detail),
            )
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("atrest-aws-kms")
            .enable_all()
            .build()
            .map_err(|e| config_error(format!("cannot start the client's runtime: {e}")))?;
        let wait = self.operation_timeout.saturating_add(BRIDGE_SLACK);
        match self.client(runtime.handle(), wait) {
            Ok((client, endpoint, region, attempts)) => Ok(AwsKms::from_parts(
                client, runtime, endpoint, region, wait, attempts,
            )),
            Err(detail) => {
                // Dropping a runtime blocks, which panics inside another runtime.
                runtime.shutdown_background();
                Err(config_error(detail))
            }
        }
    }

    /// The SDK client (loading the configuration on `handle`), the endpoint named in errors,
    /// the region and the attempt counter.
    fn client(
        self,
        handle: &tokio::runtime::Handle,
        wait: Duration,
    ) -> Result<(Client, String, String, Arc<AtomicU64>), String> {
        let from_env = self.sdk_config.is_none();
        let sdk_config = match self.sdk_config {
            Some(config) => config,
            None => {
                let mut loader = aws_config::defaults(behavior_version());
                if let Some(region) = &self.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                bridge(handle, wait, async move { Ok(loader.load().await) })
                    .map_err(|f| format!("loading configuration: {}", f.detail))?
            }
        };

        let attempts = Arc::new(AtomicU64::new(0));
        let mut config = aws_sdk_kms::config::Builder::from(&sdk_config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(self.max_attempts)
                    .with_initial_backoff(self.initial_backoff)
                    .with_max_backoff(self.max_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
            .interceptor(CountAttempts(Arc::clone(&attempts)));
        if sdk_config.behavior_version().is_none() {
            config = config.behavior_version(behavior_version());
        }
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url.clone());
        }
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        let config = config.build();
        let Some(region) = config.region().map(ToString::to_string) else {
            return Err("no AWS region: set AWS_REGION or AwsKmsBuilder::region".to_owned());
        };
        let env_endpoint = from_env
            .then(|| std::env::var("AWS_ENDPOINT_URL_KMS").ok())
            .flatten();
        let endpoint = self
            .endpoint_url
            .or(env_endpoint)
            .or_else(|| sdk_config.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        Ok((Client::from_conf(config), endpoint, region, attempts))
    }
}

/// How much longer than the operation timeout a caller waits for the runtime's answer before
/// giving up on it (a backstop: the SDK's own operation timeout fires first).
const BRIDGE_SLACK: Duration = Duration::from_secs(5);

/// Counts every HTTP attempt (retries included).
#[derive(Debug)]
struct CountAttempts(Arc<AtomicU64>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "atrest::CountAttempts"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use std::net::TcpListener;
    use std::time::Instant;

    use atrest_crypto::Key256;
    use atrest_envelope::{
        Context, DataKeyRequest, KeyId, KeyWrapper, UnwrapError, WrapContext, WrapError, WrappedKey,
    };
    use aws_sdk_kms::config::{Credentials, SharedCredentialsProvider};

    use super::*;
    use crate::aws::KEY_VERSION;

    const SECRET: &str = "atrest-unit-test-secret-key";

    /// Explicit configuration: no environment, profile or instance-metadata look-ups.
    fn offline_config() -> SdkConfig {
        SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDATRESTTEST",
                SECRET,
                None,
                None,
                "atrest-test",
            )))
            .region(Region::new("us-east-1"))
            .behavior_version(behavior_version())
            .build()
    }

    fn client(endpoint: &str) -> AwsKms {
        AwsKms::builder()
            .sdk_config(offline_config())
            .endpoint_url(endpoint)
            .max_attempts(3)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .connect_timeout(Duration::from_millis(300))
            .attempt_timeout(Duration::from_millis(300))
            .operation_timeout(Duration::from_secs(3))
            .build_uncached()
            .expect("client")
    }

    /// A port nothing listens on (bound, then released).
    fn closed_port() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    fn key() -> KeyId {
        KeyId::new("arn:aws:kms:us-east-1:111122223333:key/unit").expect("id")
    }

    fn ctx() -> WrapContext {
        WrapContext::new(&Context::new().with("tenant", "acme").expect("pair"))
    }

    fn request() -> DataKeyRequest {
        DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None)
    }

    fn backend(err: WrapError) -> AwsKmsError {
        match err {
            WrapError::Backend(e) => *e.downcast::<AwsKmsError>().expect("an AwsKmsError"),
            other => panic!("expected Backend, got {other:?}"),
        }
    }

    #[test]
    fn unreachable_kms_is_a_bounded_backend_error() {
        let endpoint = closed_port();
        let kms = client(&endpoint);
        let start = Instant::now();
        let err = backend(kms.generate(&key(), &ctx(), &request()).expect_err("down"));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(err.kind(), FailureKind::Network, "{err}");
        assert_eq!(err.operation(), Operation::GenerateDataKey);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "AWS KMS at {endpoint}: GenerateDataKey with key '{}'",
                key()
            )),
            "{message}"
        );
        assert!(!message.contains(SECRET) && !format!("{err:?}").contains(SECRET));
        let calls = kms.calls();
        assert_eq!((calls.generate_data_key, calls.attempts), (1, 3), "retried");
        assert!(!format!("{kms:?}").contains(SECRET));
    }

    #[test]
    fn silent_kms_times_out() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for conn in listener.incoming().take(3) {
                conns.push(conn);
            }
            std::thread::sleep(Duration::from_secs(3));
        });
        let kms = client(&endpoint);
        let start = Instant::now();
        let wrapped = WrappedKey {
            key_id: key(),
            version: KEY_VERSION,
            ciphertext: vec![1; 184],
        };
        let err = match kms.unwrap(&wrapped, &ctx()) {
            Err(UnwrapError::Backend(e)) => *e.downcast::<AwsKmsError>().expect("AwsKmsError"),
            other => panic!("expected Backend, got {other:?}"),
        };
        let elapsed = start.elapsed();
        // 3 attempts of 300 ms plus backoff, well within the 3 s operation timeout.
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(err.kind(), FailureKind::Timeout, "{err}");
        assert_eq!(kms.calls().attempts, 3);
        drop(held);
    }

    #[test]
    fn no_region_is_a_configuration_error() {
        let config = SdkConfig::builder()
            .behavior_version(behavior_version())
            .build();
        let err = AwsKms::builder()
            .sdk_config(config)
            .build_uncached()
            .expect_err("no region");
        assert_eq!(err.operation(), Operation::Configure);
        assert!(err.to_string().contains("no AWS region"), "{err}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failed_build_inside_a_runtime_does_not_panic() {
        let config = SdkConfig::builder()
            .behavior_version(behavior_version())
            .build();
        let err = AwsKms::builder().sdk_config(config).build_uncached();
        assert!(err.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usable_inside_a_multi_thread_runtime() {
        // Built, called and dropped inside an async context: no `block_on`, no panic.
        let kms = client(&closed_port());
        assert!(matches!(
            kms.generate(&key(), &ctx(), &request()),
            Err(WrapError::Backend(_))
        ));
        let moved = kms.clone();
        let from_blocking = tokio::task::spawn_blocking(move || {
            moved.wrap(&key(), &Key256::from_bytes([1; 32]), &ctx())
        })
        .await
        .expect("join");
        assert!(matches!(from_blocking, Err(WrapError::Backend(_))));
        drop(kms);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn usable_inside_a_current_thread_runtime() {
        let kms = client(&closed_port());
        assert!(matches!(
            kms.generate(&key(), &ctx(), &request()),
            Err(WrapError::Backend(_))
        ));
        drop(kms);
    }
}
