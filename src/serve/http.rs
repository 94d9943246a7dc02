//! The REST front-end: the Open Inference Protocol's HTTP/REST API (health, metadata, infer with the
//! binary tensor data extension, the model repository extension) and Prometheus `/metrics`, over
//! axum (HTTP/1.1 and HTTP/2). It parses, calls [`ServerState`] and writes the answer; nothing else.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::metrics::Cause;
use super::tensor::{elements, from_binary, DType, Data, InferRequest, InputTensor, RequestedOutput};
use super::{InferResponse, ServeError, ServerState, EXTENSIONS, SERVER_VERSION};
use crate::transform::pipeline::Tensor;

/// The header announcing the JSON part's length in a binary-extension body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

type St = State<Arc<ServerState>>;

/// Serves REST on `listener` until `shutdown` turns true, then finishes in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ServerState>, mut shutdown: watch::Receiver<bool>) {
    use axum::serve::ListenerExt;
    let app = router(state);
    // Answers are small: send them at once instead of waiting for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await;
}

/// The routes.
pub fn router(state: Arc<ServerState>) -> Router {
    let protected = Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata_v))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_v))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/v2/repository/index", post(index))
        .route("/v2/repository/models/{name}/load", post(load))
        .route("/v2/repository/models/{name}/unload", post(unload))
        .route("/metrics", get(metrics))
        .route("/v2/experiments", get(experiments).post(create_experiment))
        .route("/v2/experiments/{name}", get(experiment).delete(stop_experiment))
        .route("/v2/experiments/{name}/stop", post(stop_experiment))
        .route("/v2/feedback", post(feedback))
        .route("/v2/models/{name}/monitoring", get(monitoring))
        .layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .merge(protected)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(e: &ServeError) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": e.message })).unwrap_or_default();
    json_response(StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

fn ok_json(v: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, serde_json::to_vec(v).unwrap_or_default())
}

async fn auth(State(s): St, req: Request, next: Next) -> Response {
    let h = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !s.authorized(h) {
        s.metrics.unmatched_failure(Cause::Unauthorized);
        let mut r = error(&ServeError::unauthorized());
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

async fn not_found() -> Response {
    error(&ServeError::not_found("no such endpoint; see the Open Inference Protocol (/v2/...)"))
}

async fn live() -> Response {
    ok_json(&serde_json::json!({"live": true}))
}

async fn ready(State(s): St) -> Response {
    if s.ready() {
        ok_json(&serde_json::json!({"ready": true}))
    } else {
        json_response(StatusCode::SERVICE_UNAVAILABLE, br#"{"ready":false}"#.to_vec())
    }
}

async fn server_metadata() -> Response {
    ok_json(&serde_json::json!({"name": "ferrox", "version": SERVER_VERSION, "extensions": EXTENSIONS}))
}

async fn model_metadata(State(s): St, Path(name): Path<String>) -> Response {
    s.model_metadata(&name, None).map(|m| ok_json(&m)).unwrap_or_else(|e| error(&e))
}

async fn model_metadata_v(State(s): St, Path((name, version)): Path<(String, String)>) -> Response {
    s.model_metadata(&name, Some(&version)).map(|m| ok_json(&m)).unwrap_or_else(|e| error(&e))
}

fn ready_answer(ok: bool, name: &str) -> Response {
    if ok {
        ok_json(&serde_json::json!({"name": name, "ready": true}))
    } else {
        error(&ServeError::not_found(format!("model '{name}' is not ready")))
    }
}

async fn model_ready(State(s): St, Path(name): Path<String>) -> Response {
    ready_answer(s.model_ready(&name, None), &name)
}

async fn model_ready_v(State(s): St, Path((name, version)): Path<(String, String)>) -> Response {
    ready_answer(s.model_ready(&name, Some(&version)), &name)
}

async fn metrics(State(s): St) -> Response {
    let mut r = Response::new(Body::from(s.metrics.render()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

#[derive(Deserialize, Default)]
struct RepoRequest {
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    ready: bool,
}

fn repo_body(body: &Bytes) -> Result<RepoRequest, ServeError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(RepoRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| ServeError::bad(format!("request body is not valid JSON: {e}")))
}

async fn index(State(s): St, body: Bytes) -> Response {
    match repo_body(&body) {
        Ok(r) => ok_json(&s.index(r.ready)),
        Err(e) => error(&e),
    }
}

fn param_str(p: &Map<String, Value>, key: &str) -> Result<Option<String>, ServeError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key == "version" => Ok(Some(n.to_string())),
        Some(other) => Err(ServeError::bad(format!("parameter '{key}' must be a string, got {other}"))),
    }
}

async fn load(State(s): St, Path(name): Path<String>, body: Bytes) -> Response {
    let r = match repo_body(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let (path, version) = match (param_str(&r.parameters, "path"), param_str(&r.parameters, "version")) {
        (Ok(p), Ok(v)) => (p, v),
        (Err(e), _) | (_, Err(e)) => return error(&e),
    };
    let rollback = match r.parameters.get("rollback") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return error(&ServeError::bad(format!("parameter 'rollback' must be true or false, got {other}"))),
    };
    let st = s.clone();
    let result = tokio::task::spawn_blocking(move || st.load(&name, path.as_deref(), version, rollback)).await;
    match result {
        Ok(Ok(l)) => ok_json(&serde_json::json!({
            "model": l.model, "version": l.version, "previous": l.previous, "sha256": l.sha256, "seconds": l.seconds,
        })),
        Ok(Err(e)) => error(&e),
        Err(_) => error(&ServeError::internal("the load task failed")),
    }
}

async fn unload(State(s): St, Path(name): Path<String>) -> Response {
    match s.store.unload(&name) {
        Ok(()) => ok_json(&serde_json::json!({"model": name, "unloaded": true})),
        Err(e) => error(&e),
    }
}

async fn experiments(State(s): St) -> Response {
    ok_json(&s.router.all().iter().map(|e| e.status()).collect::<Vec<_>>())
}

async fn create_experiment(State(s): St, body: Bytes) -> Response {
    let cfg: super::router::ExperimentConfig = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return error(&ServeError::bad(format!("experiment: {e}"))),
    };
    match s.router.create(cfg, &s.store) {
        Ok(e) => ok_json(&e.status()),
        Err(e) => error(&e),
    }
}

async fn experiment(State(s): St, Path(name): Path<String>) -> Response {
    match s.router.get(&name) {
        Some(e) => ok_json(&e.status()),
        None => error(&ServeError::not_found(format!("no experiment named '{name}' is running"))),
    }
}

async fn stop_experiment(State(s): St, Path(name): Path<String>) -> Response {
    match s.router.stop(&name) {
        Ok(e) => {
            let mut st = e.status();
            st["stopped"] = Value::Bool(true);
            ok_json(&st)
        }
        Err(e) => error(&e),
    }
}

async fn monitoring(State(s): St, Path(name): Path<String>) -> Response {
    s.monitoring(&name).map(|v| ok_json(&v)).unwrap_or_else(|e| error(&e))
}

/// `POST /v2/feedback`: `{"experiment": name?, "feedback": [items]}` or a bare list of items.
async fn feedback(State(s): St, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(&ServeError::bad(format!("feedback: the body is not JSON: {e}"))),
    };
    let (items, experiment) = match &v {
        Value::Array(items) => (items.as_slice(), None),
        Value::Object(o) => match (o.get("feedback"), o.get("experiment")) {
            (Some(Value::Array(items)), None | Some(Value::Null)) => (items.as_slice(), None),
            (Some(Value::Array(items)), Some(Value::String(e))) => (items.as_slice(), Some(e.as_str())),
            (Some(Value::Array(_)), Some(e)) => return error(&ServeError::bad(format!("feedback: experiment must be a name, got {e}"))),
            _ => return error(&ServeError::bad("feedback: expected {\"feedback\": [items]} or a list of items")),
        },
        _ => return error(&ServeError::bad("feedback: expected {\"feedback\": [items]} or a list of items")),
    };
    match s.feedback(items, experiment) {
        Ok(r) => ok_json(&r),
        Err(e) => error(&e),
    }
}

#[derive(Deserialize)]
struct JsonInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct JsonOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
struct JsonRequest {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<JsonInput>,
    #[serde(default)]
    outputs: Vec<JsonOutput>,
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), ServeError> {
    if depth > 32 {
        return Err(ServeError::bad("tensor data is nested too deeply"));
    }
    match v {
        Value::Array(items) => {
            for i in items {
                flatten(i, out, depth + 1)?;
            }
        }
        other => out.push(other),
    }
    Ok(())
}

/// JSON tensor data (flat or nested, row-major) as typed values.
fn json_data(v: &Value, dtype: DType, input: &str) -> Result<Data, ServeError> {
    let mut flat = Vec::new();
    flatten(v, &mut flat, 0)?;
    let bad = |i: usize, want: &str, got: &Value| {
        ServeError::bad(format!("input '{input}': element {i} must be {want}, got {}", short(got)))
    };
    Ok(match dtype {
        DType::Bool => Data::Bool(flat.iter().enumerate().map(|(i, v)| v.as_bool().ok_or_else(|| bad(i, "true or false", v))).collect::<Result<_, _>>()?),
        DType::F32 | DType::F64 => {
            let mut out = Vec::with_capacity(flat.len());
            for (i, v) in flat.iter().enumerate() {
                out.push(match v {
                    Value::Number(n) => n.as_f64().ok_or_else(|| bad(i, "a number", v))?,
                    Value::Null => f64::NAN,
                    _ => return Err(bad(i, "a number (or null for missing)", v)),
                });
            }
            if dtype == DType::F32 {
                Data::F32(out.into_iter().map(|x| x as f32).collect())
            } else {
                Data::F64(out)
            }
        }
        DType::Bytes => Data::Bytes(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| bad(i, "a string", v)))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let (lo, hi): (i128, i128) = match dtype {
                DType::U8 => (0, u8::MAX as i128),
                DType::U16 => (0, u16::MAX as i128),
                DType::U32 => (0, u32::MAX as i128),
                DType::U64 => (0, i64::MAX as i128),
                DType::I8 => (i8::MIN as i128, i8::MAX as i128),
                DType::I16 => (i16::MIN as i128, i16::MAX as i128),
                DType::I32 => (i32::MIN as i128, i32::MAX as i128),
                _ => (i64::MIN as i128, i64::MAX as i128),
            };
            let mut out = Vec::with_capacity(flat.len());
            for (i, v) in flat.iter().enumerate() {
                let x = v.as_i64().map(|x| x as i128).or_else(|| v.as_u64().map(|x| x as i128));
                match x {
                    Some(x) if x >= lo && x <= hi => out.push(x as i64),
                    _ => return Err(bad(i, &format!("an integer in [{lo}, {hi}]"), v)),
                }
            }
            Data::I64(out)
        }
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.char_indices().nth(37).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s
    }
}

fn flag(p: &Map<String, Value>, key: &str) -> bool {
    matches!(p.get(key), Some(Value::Bool(true)))
}

/// Python's `json` (and so several clients) writes a missing float as a bare `NaN`, which JSON lacks:
/// outside strings it reads as `null` (a missing value).
fn nan_to_null(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 16);
    let (mut in_str, mut escaped, mut i) = (false, false, 0);
    while i < json.len() {
        let c = json[i];
        if in_str {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if json[i..].starts_with(b"NaN") {
            out.extend_from_slice(b"null");
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Parses an OIP REST infer body (JSON, or JSON followed by binary tensors when `json_len` is given).
pub fn parse_infer(body: &[u8], json_len: Option<usize>) -> Result<InferRequest, ServeError> {
    let (json, mut binary) = match json_len {
        Some(n) if n <= body.len() => (&body[..n], &body[n..]),
        Some(n) => {
            return Err(ServeError::bad(format!(
                "{HEADER_LENGTH} is {n} but the body has only {} bytes",
                body.len()
            )))
        }
        None => (body, &[][..]),
    };
    let cleaned;
    let json = if json.windows(3).any(|w| w == b"NaN") {
        cleaned = nan_to_null(json);
        &cleaned[..]
    } else {
        json
    };
    let req: JsonRequest = serde_json::from_slice(json).map_err(|e| ServeError::bad(format!("request body is not valid OIP JSON: {e}")))?;
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for i in req.inputs {
        let dtype = DType::parse(&i.datatype, &i.name)?;
        let count = elements(&i.shape, &i.name)?;
        let data = match (i.parameters.get("binary_data_size"), &i.data) {
            (Some(size), _) => {
                let size = size
                    .as_u64()
                    .ok_or_else(|| ServeError::bad(format!("input '{}': binary_data_size must be a non-negative integer", i.name)))?
                    as usize;
                if size > binary.len() {
                    return Err(ServeError::bad(format!(
                        "input '{}': binary_data_size is {size} but only {} bytes of binary data remain",
                        i.name,
                        binary.len()
                    )));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                from_binary(mine, dtype, count, &i.name)?
            }
            (None, Some(v)) => json_data(v, dtype, &i.name)?,
            (None, None) => return Err(ServeError::bad(format!("input '{}' has no data", i.name))),
        };
        inputs.push(InputTensor { name: i.name, dtype, shape: i.shape, data });
    }
    if !binary.is_empty() {
        return Err(ServeError::bad(format!("{} bytes of binary data are not claimed by any input", binary.len())));
    }
    let outputs = req
        .outputs
        .into_iter()
        .map(|o| RequestedOutput { binary: flag(&o.parameters, "binary_data"), name: o.name })
        .collect();
    let timeout_us = match req.parameters.get("timeout") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| ServeError::bad("parameter 'timeout' must be a whole number of microseconds"))?),
    };
    let id = match req.id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    let params = req
        .parameters
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some((k.clone(), n.to_string())),
            _ => None,
        })
        .collect();
    Ok(InferRequest {
        id,
        inputs,
        outputs,
        contrib: flag(&req.parameters, "contrib") || flag(&req.parameters, "pred_contrib"),
        binary_output: flag(&req.parameters, "binary_data_output"),
        timeout_us,
        params,
    })
}

/// Writes the answer: JSON, with binary outputs appended after it when asked for.
pub fn write_infer(r: &InferResponse) -> (Vec<u8>, Option<usize>) {
    let mut outputs = Vec::with_capacity(r.outputs.len());
    let mut binary: Vec<u8> = Vec::new();
    for o in &r.outputs {
        let mut obj = Map::new();
        obj.insert("name".into(), Value::String(o.name.clone()));
        obj.insert("datatype".into(), Value::String(o.datatype().into()));
        obj.insert("shape".into(), Value::from(o.shape()));
        if o.binary {
            let b = o.to_binary();
            obj.insert("parameters".into(), serde_json::json!({"binary_data_size": b.len()}));
            binary.extend_from_slice(&b);
        } else {
            let data = match &o.tensor {
                Tensor::F64 { data, .. } => Value::from(data.iter().map(|&x| if x.is_finite() { Value::from(x) } else { Value::Null }).collect::<Vec<_>>()),
                Tensor::I64 { data, .. } => Value::from(data.clone()),
                Tensor::Bytes { data, .. } => Value::from(data.clone()),
            };
            obj.insert("data".into(), data);
        }
        outputs.push(Value::Object(obj));
    }
    let mut head = serde_json::json!({
        "model_name": r.model_name, "model_version": r.model_version, "id": r.id, "outputs": outputs,
    });
    if !r.parameters.is_empty() {
        head["parameters"] = Value::Object(r.parameters.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect());
    }
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    if binary.is_empty() {
        (body, None)
    } else {
        let n = body.len();
        body.extend_from_slice(&binary);
        (body, Some(n))
    }
}

async fn read_body(s: &ServerState, headers: &HeaderMap, body: Body) -> Result<Bytes, ServeError> {
    let limit = s.config.max_body_bytes;
    let too_large = || ServeError {
        status: 413,
        cause: Cause::TooLarge,
        message: format!("request body is larger than the server's limit of {limit} bytes"),
        integrity: false,
    };
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()) {
        if len > limit {
            return Err(too_large());
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}

async fn infer_common(s: Arc<ServerState>, name: String, version: Option<String>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let bytes = match read_body(&s, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            s.metrics.unmatched_failure(e.cause);
            return error(&e);
        }
    };
    let json_len = match headers.get(HEADER_LENGTH).map(|v| v.to_str().ok().and_then(|t| t.trim().parse::<usize>().ok())) {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => return error(&ServeError::bad(format!("{HEADER_LENGTH} must be a byte count"))),
    };
    let req = match parse_infer(&bytes, json_len) {
        Ok(mut r) => {
            for h in ["x-ferrox-unit", "x-ferrox-variant"] {
                if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
                    r.params.push((h.to_owned(), v.to_owned()));
                }
            }
            r
        }
        Err(e) => {
            // Count the failure against the model when it exists.
            match s.store.version(&name, version.as_deref()) {
                Ok(v) => {
                    v.metrics.requests.increment(1);
                    v.metrics.failure(e.cause).increment(1);
                }
                Err(_) => s.metrics.unmatched_failure(e.cause),
            }
            return error(&e);
        }
    };
    match s.infer(&name, version.as_deref(), req, start).await {
        Ok(r) => {
            let (body, json_len) = write_infer(&r);
            let mut resp = Response::new(Body::from(body));
            let h = resp.headers_mut();
            if let Some((_, variant)) = r.parameters.iter().find(|(k, _)| *k == "variant") {
                if let Ok(v) = HeaderValue::from_str(variant) {
                    h.insert("x-ferrox-variant", v);
                }
            }
            match json_len {
                Some(n) => {
                    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                    h.insert(HEADER_LENGTH, HeaderValue::from(n));
                }
                None => {
                    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
            }
            resp
        }
        Err(e) => error(&e),
    }
}

async fn infer(State(s): St, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Response {
    infer_common(s, name, None, headers, body).await
}

async fn infer_v(State(s): St, Path((name, version)): Path<(String, String)>, headers: HeaderMap, body: Body) -> Response {
    infer_common(s, name, Some(version), headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_binary() {
        let r = parse_infer(br#"{"id":"7","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[[1,null]]}]}"#, None).unwrap();
        assert_eq!(r.id.as_deref(), Some("7"));
        match &r.inputs[0].data {
            Data::F32(v) => assert!(v[0] == 1.0 && v[1].is_nan()),
            d => panic!("{d:?}"),
        }
        let head = br#"{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}],"outputs":[{"name":"predict","parameters":{"binary_data":true}}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(&[1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
        let r = parse_infer(&body, Some(head.len())).unwrap();
        assert_eq!(r.inputs[0].data, Data::Bytes(vec![b"a".to_vec(), b"b".to_vec()]));
        assert!(r.outputs[0].binary);
        // Unclaimed bytes, short data, wrong element types and lengths are 400s, never panics.
        assert!(parse_infer(&body, Some(head.len() - 1)).is_err());
        assert!(parse_infer(&body[..body.len() - 1], Some(head.len())).is_err());
        assert!(parse_infer(&body, Some(body.len() + 1)).is_err());
        assert!(parse_infer(br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[300]}]}"#, None).is_err());
        assert!(parse_infer(br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}"#, None).is_err());
        assert!(parse_infer(br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[1]}]}"#, None).is_err());
        assert!(parse_infer(b"{", None).is_err());
        // A bare NaN is a missing value; inside a string it stays text.
        let r = parse_infer(br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[NaN,1]},{"name":"s","shape":[1],"datatype":"BYTES","data":["NaN \" NaN"]}]}"#, None).unwrap();
        assert!(matches!(&r.inputs[0].data, Data::F64(v) if v[0].is_nan() && v[1] == 1.0));
        assert_eq!(r.inputs[1].data, Data::Bytes(vec![br#"NaN " NaN"#.to_vec()]));
    }
}

#[cfg(test)]
mod fuzz {
    //! Random and mutated bodies: every one is answered (Ok or a 4xx), none panics. Cases found by
    //! earlier runs are kept as plain tests below.
    use super::*;
    use crate::serve::tensor::model_input;
    use proptest::prelude::*;

    const VALID: &[u8] = br#"{"id":"q","parameters":{"timeout":5},"inputs":[{"name":"a","shape":[2],"datatype":"BYTES","data":["x","y"]},{"name":"b","shape":[2,1],"datatype":"FP32","data":[[1.5],[null]]}],"outputs":[{"name":"predict","parameters":{"binary_data":true}}]}"#;

    fn check(body: &[u8], json_len: Option<usize>) {
        if let Ok(r) = parse_infer(body, json_len) {
            let cols = vec!["a".to_string(), "b".to_string()];
            if let Err(e) = model_input(r.inputs, &cols) {
                assert_eq!(e.status, 400, "{}", e.message);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..256), split in proptest::option::of(0usize..300)) {
            check(&body, split);
        }

        #[test]
        fn mutated_json(edits in proptest::collection::vec((0usize..VALID.len(), any::<u8>(), 0u8..3), 1..6)) {
            let mut body = VALID.to_vec();
            for (at, byte, op) in edits {
                let at = at.min(body.len().saturating_sub(1));
                match op {
                    0 => body[at] = byte,
                    1 => body.insert(at, byte),
                    _ => { body.remove(at); }
                }
                if body.is_empty() { break; }
            }
            check(&body, None);
        }

        #[test]
        fn binary_tensors(bytes in proptest::collection::vec(any::<u8>(), 0..64), dt in 0usize..12, count in 0usize..40) {
            let names = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32", "FP64", "BYTES"];
            let dtype = DType::parse(names[dt], "x").unwrap();
            let _ = from_binary(&bytes, dtype, count, "x");
        }

        #[test]
        fn shapes(shape in proptest::collection::vec(-3i64..(1 << 40), 0..4)) {
            let n = elements(&shape, "x");
            if let Ok(n) = n {
                let t = InputTensor { name: "x".into(), dtype: DType::F64, shape: shape.clone(), data: Data::F64(vec![0.0; n.min(64)]) };
                let _ = model_input(vec![t], &["x".to_string()]);
            }
        }

        #[test]
        fn grpc_messages(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            use prost::Message;
            if let Ok(m) = crate::serve::grpc::pb::ModelInferRequest::decode(&bytes[..]) {
                if let Ok(r) = crate::serve::grpc::parse_request(m) {
                    let _ = model_input(r.inputs, &["a".to_string()]);
                }
            }
        }
    }

    #[test]
    fn kept_cases() {
        // A huge declared shape with no data, a zero-row matrix, deep nesting, a lone header length.
        check(br#"{"inputs":[{"name":"b","shape":[4294967296,4294967296],"datatype":"FP32","data":[]}]}"#, None);
        check(br#"{"inputs":[{"name":"b","shape":[0,2],"datatype":"FP32","data":[]}]}"#, None);
        let deep = format!(r#"{{"inputs":[{{"name":"b","shape":[1],"datatype":"FP32","data":{}1{}}}]}}"#, "[".repeat(100), "]".repeat(100));
        check(deep.as_bytes(), None);
        check(b"", Some(0));
        check(VALID, Some(VALID.len()));
    }
}
