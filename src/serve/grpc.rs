//! The gRPC front-end: the Open Inference Protocol's `inference.GRPCInferenceService` (health,
//! metadata, infer with typed or raw contents, the repository extension) over tonic. It converts
//! messages, calls [`ServerState`] and converts back; nothing else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::tensor::{elements, from_binary, DType, Data, InferRequest, InputTensor, RequestedOutput};
use super::{ServeError, ServerState, EXTENSIONS, SERVER_VERSION};

/// The code generated from proto/grpc_inference.proto.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::infer_parameter::ParameterChoice;
use pb::model_repository_parameter::ParameterChoice as RepoChoice;

/// Serves gRPC on `listener` until `shutdown` turns true.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ServerState>, mut shutdown: watch::Receiver<bool>) {
    let limit = state.config.max_body_bytes;
    let svc = GrpcInferenceServiceServer::new(Grpc { state }).max_decoding_message_size(limit).max_encoding_message_size(usize::MAX);
    let incoming = tokio_stream_of(listener);
    let _ = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await;
}

fn tokio_stream_of(listener: tokio::net::TcpListener) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

/// The service.
pub struct Grpc {
    state: Arc<ServerState>,
}

fn status(e: ServeError) -> Status {
    match e.status {
        400 => Status::invalid_argument(e.message),
        401 => Status::unauthenticated(e.message),
        404 => Status::not_found(e.message),
        413 => Status::resource_exhausted(e.message),
        429 => Status::resource_exhausted(e.message),
        504 => Status::deadline_exceeded(e.message),
        _ => Status::internal(e.message),
    }
}

impl Grpc {
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let h = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if self.state.authorized(h) {
            Ok(())
        } else {
            self.state.metrics.unmatched_failure(super::metrics::Cause::Unauthorized);
            Err(status(ServeError::unauthorized()))
        }
    }
}

fn version_of(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

fn flag(p: &HashMap<String, pb::InferParameter>, key: &str) -> bool {
    matches!(p.get(key).and_then(|x| x.parameter_choice.as_ref()), Some(ParameterChoice::BoolParam(true)))
}

fn contents_data(c: pb::InferTensorContents, dtype: DType, name: &str) -> Result<Data, ServeError> {
    Ok(match dtype {
        DType::Bool => Data::Bool(c.bool_contents),
        DType::I8 | DType::I16 | DType::I32 => Data::I64(c.int_contents.into_iter().map(i64::from).collect()),
        DType::I64 => Data::I64(c.int64_contents),
        DType::U8 | DType::U16 | DType::U32 => Data::I64(c.uint_contents.into_iter().map(i64::from).collect()),
        DType::U64 => Data::I64(
            c.uint64_contents
                .into_iter()
                .map(|x| i64::try_from(x).map_err(|_| ServeError::bad(format!("input '{name}': UINT64 value {x} is too large"))))
                .collect::<Result<_, _>>()?,
        ),
        DType::F32 => Data::F32(c.fp32_contents),
        DType::F64 => Data::F64(c.fp64_contents),
        DType::Bytes => Data::Bytes(c.bytes_contents.into_iter().map(|b| b.to_vec()).collect()),
    })
}

/// Converts a gRPC infer request.
pub fn parse_request(r: pb::ModelInferRequest) -> Result<InferRequest, ServeError> {
    let raw = r.raw_input_contents;
    if !raw.is_empty() && raw.len() != r.inputs.len() {
        return Err(ServeError::bad(format!(
            "raw_input_contents has {} entries but the request has {} inputs",
            raw.len(),
            r.inputs.len()
        )));
    }
    let mut inputs = Vec::with_capacity(r.inputs.len());
    for (k, i) in r.inputs.into_iter().enumerate() {
        let dtype = DType::parse(&i.datatype, &i.name)?;
        let count = elements(&i.shape, &i.name)?;
        let data = if let Some(bytes) = raw.get(k) {
            if i.contents.is_some() {
                return Err(ServeError::bad(format!("input '{}' has both contents and raw_input_contents", i.name)));
            }
            from_binary(bytes, dtype, count, &i.name)?
        } else {
            contents_data(i.contents.unwrap_or_default(), dtype, &i.name)?
        };
        inputs.push(InputTensor { name: i.name, dtype, shape: i.shape, data });
    }
    let timeout_us = match r.parameters.get("timeout").and_then(|p| p.parameter_choice.as_ref()) {
        None => None,
        Some(ParameterChoice::Int64Param(v)) if *v >= 0 => Some(*v as u64),
        Some(ParameterChoice::Uint64Param(v)) => Some(*v),
        Some(_) => return Err(ServeError::bad("parameter 'timeout' must be a whole number of microseconds")),
    };
    let params = r
        .parameters
        .iter()
        .filter_map(|(k, p)| match p.parameter_choice.as_ref()? {
            ParameterChoice::StringParam(s) => Some((k.clone(), s.clone())),
            ParameterChoice::Int64Param(v) => Some((k.clone(), v.to_string())),
            ParameterChoice::Uint64Param(v) => Some((k.clone(), v.to_string())),
            _ => None,
        })
        .collect();
    Ok(InferRequest {
        params,
        id: (!r.id.is_empty()).then_some(r.id),
        outputs: r.outputs.into_iter().map(|o| RequestedOutput { name: o.name, binary: true }).collect(),
        contrib: flag(&r.parameters, "contrib") || flag(&r.parameters, "pred_contrib"),
        binary_output: true,
        inputs,
        timeout_us,
    })
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(&self, req: Request<pb::ServerLiveRequest>) -> Result<Response<pb::ServerLiveResponse>, Status> {
        let _ = req;
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, req: Request<pb::ServerReadyRequest>) -> Result<Response<pb::ServerReadyResponse>, Status> {
        let _ = req;
        Ok(Response::new(pb::ServerReadyResponse { ready: self.state.ready() }))
    }

    async fn model_ready(&self, req: Request<pb::ModelReadyRequest>) -> Result<Response<pb::ModelReadyResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        Ok(Response::new(pb::ModelReadyResponse { ready: self.state.model_ready(&r.name, version_of(&r.version)) }))
    }

    async fn server_metadata(&self, req: Request<pb::ServerMetadataRequest>) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        self.check(&req)?;
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "ferrox".into(),
            version: SERVER_VERSION.into(),
            extensions: EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(&self, req: Request<pb::ModelMetadataRequest>) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let m = self.state.model_metadata(&r.name, version_of(&r.version)).map_err(status)?;
        let conv = |t: &super::TensorMeta| pb::model_metadata_response::TensorMetadata {
            name: t.name.clone(),
            datatype: t.datatype.clone(),
            shape: t.shape.clone(),
        };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: m.name.clone(),
            versions: m.versions.clone(),
            platform: m.platform.clone(),
            inputs: m.inputs.iter().map(conv).collect(),
            outputs: m.outputs.iter().map(conv).collect(),
        }))
    }

    async fn model_infer(&self, req: Request<pb::ModelInferRequest>) -> Result<Response<pb::ModelInferResponse>, Status> {
        let start = Instant::now();
        self.check(&req)?;
        let headers: Vec<(String, String)> = ["x-ferrox-unit", "x-ferrox-variant"]
            .iter()
            .filter_map(|h| req.metadata().get(*h).and_then(|v| v.to_str().ok()).map(|v| (h.to_string(), v.to_owned())))
            .collect();
        let r = req.into_inner();
        let (name, version) = (r.model_name.clone(), r.model_version.clone());
        let parsed = match parse_request(r) {
            Ok(mut p) => {
                p.params.extend(headers);
                p
            }
            Err(e) => {
                match self.state.store.version(&name, version_of(&version)) {
                    Ok(v) => {
                        v.metrics.requests.increment(1);
                        v.metrics.failure(e.cause).increment(1);
                    }
                    Err(_) => self.state.metrics.unmatched_failure(e.cause),
                }
                return Err(status(e));
            }
        };
        let out = self.state.infer(&name, version_of(&version), parsed, start).await.map_err(status)?;
        let mut outputs = Vec::with_capacity(out.outputs.len());
        let mut raw = Vec::with_capacity(out.outputs.len());
        for o in &out.outputs {
            outputs.push(pb::model_infer_response::InferOutputTensor {
                name: o.name.clone(),
                datatype: o.datatype().into(),
                shape: o.shape(),
                parameters: HashMap::new(),
                contents: None,
            });
            raw.push(bytes::Bytes::from(o.to_binary()));
        }
        let parameters = out
            .parameters
            .iter()
            .map(|(k, v)| (k.to_string(), pb::InferParameter { parameter_choice: Some(ParameterChoice::StringParam(v.clone())) }))
            .collect();
        Ok(Response::new(pb::ModelInferResponse {
            model_name: out.model_name,
            model_version: out.model_version,
            id: out.id,
            parameters,
            outputs,
            raw_output_contents: raw,
        }))
    }

    async fn repository_index(&self, req: Request<pb::RepositoryIndexRequest>) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let models = self
            .state
            .index(r.ready)
            .into_iter()
            .map(|e| pb::repository_index_response::ModelIndex { name: e.name, version: e.version, state: e.state, reason: e.reason })
            .collect();
        Ok(Response::new(pb::RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(&self, req: Request<pb::RepositoryModelLoadRequest>) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let text = |key: &str| match r.parameters.get(key).and_then(|p| p.parameter_choice.as_ref()) {
            Some(RepoChoice::StringParam(s)) => Ok(Some(s.clone())),
            Some(RepoChoice::Int64Param(v)) if key == "version" => Ok(Some(v.to_string())),
            None => Ok(None),
            Some(_) => Err(Status::invalid_argument(format!("parameter '{key}' must be a string"))),
        };
        let (path, version) = (text("path")?, text("version")?);
        let rollback = match r.parameters.get("rollback").and_then(|p| p.parameter_choice.as_ref()) {
            None | Some(RepoChoice::BoolParam(false)) => false,
            Some(RepoChoice::BoolParam(true)) => true,
            Some(_) => return Err(Status::invalid_argument("parameter 'rollback' must be a bool")),
        };
        let st = self.state.clone();
        let name = r.model_name.clone();
        tokio::task::spawn_blocking(move || st.load(&name, path.as_deref(), version, rollback))
            .await
            .map_err(|_| Status::internal("the load task failed"))?
            .map_err(status)?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(&self, req: Request<pb::RepositoryModelUnloadRequest>) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        self.state.store.unload(&r.model_name).map_err(status)?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}
