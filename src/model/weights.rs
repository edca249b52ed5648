//! Reading checkpoint tensors — `model.safetensors`, sharded
//! `model.safetensors.index.json`, or pickle-only `pytorch_model.bin` — into
//! host memory as f32, and writing them back as safetensors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::ModelError;

pub use crate::backend::HostTensor;

/// The tensors of a checkpoint by name, with what was taken from it tracked
/// so the loader can report unused keys.
#[derive(Debug, Default)]
pub struct TensorMap {
    /// Where they came from (for error messages).
    pub source: PathBuf,
    tensors: BTreeMap<String, HostTensor>,
    taken: BTreeSet<String>,
    /// When set, missing keys are made up: normal(0, 0.02) from this RNG
    /// (LayerNorm-style `*.weight` vectors as ones) — a model from random init.
    synthetic: Option<rand_chacha::ChaCha8Rng>,
}

impl TensorMap {
    /// Wraps a name -> tensor map.
    pub fn from_map(source: PathBuf, tensors: BTreeMap<String, HostTensor>) -> TensorMap {
        TensorMap { source, tensors, taken: BTreeSet::new(), synthetic: None }
    }

    /// An empty map that makes up every tensor asked for (random init, seeded).
    pub fn synthetic(seed: u64) -> TensorMap {
        use rand::SeedableRng;
        TensorMap {
            source: PathBuf::from("(random init)"),
            tensors: BTreeMap::new(),
            taken: BTreeSet::new(),
            synthetic: Some(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// Whether a key exists.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Takes a tensor, checking its shape and that every value is finite.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Result<HostTensor, ModelError> {
        if let Some(rng) = self.synthetic.as_mut() {
            if !self.tensors.contains_key(key) {
                let n: usize = shape.iter().product();
                let data = if shape.len() == 1 && key.ends_with(".weight") {
                    vec![1.0; n]
                } else if shape.len() == 1 && key.ends_with(".bias") {
                    vec![0.0; n]
                } else {
                    super::checkpoint::rand_distr_normal(rng, n, 0.02)
                };
                self.tensors.insert(key.to_string(), HostTensor::new(shape.to_vec(), data));
            }
        }
        let t = self
            .tensors
            .get(key)
            .ok_or_else(|| ModelError::MissingWeight { path: self.source.clone(), key: key.to_string() })?;
        if t.shape != shape {
            return Err(ModelError::WeightShape {
                path: self.source.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: t.shape.clone(),
            });
        }
        let count = t.data.iter().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(ModelError::NonFinite {
                path: self.source.clone(),
                key: key.to_string(),
                count,
                total: t.data.len(),
            });
        }
        self.taken.insert(key.to_string());
        Ok(t.clone())
    }

    /// Keys present but never taken, sorted.
    pub fn unused(&self) -> Vec<String> {
        self.tensors.keys().filter(|k| !self.taken.contains(*k)).cloned().collect()
    }

    /// Adds tensors for keys the checkpoint lacks (existing keys are kept).
    pub fn insert_missing(&mut self, tensors: BTreeMap<String, HostTensor>) {
        for (k, v) in tensors {
            self.tensors.entry(k).or_insert(v);
        }
    }

    /// Puts `prefix` in front of every key when `probe` (a key under the
    /// prefix) is absent and `probe` without the prefix is there: a base
    /// model's checkpoint read into a classifier that holds it under `prefix`.
    pub fn add_prefix_if_missing(&mut self, prefix: &str, probe: &str) {
        let bare = probe.strip_prefix(prefix).map(|b| format!("{b}.weight"));
        let has_bare = bare.is_some_and(|b| self.tensors.contains_key(&b));
        if self.tensors.contains_key(&format!("{probe}.weight")) || !has_bare {
            return;
        }
        let tensors = std::mem::take(&mut self.tensors);
        self.tensors = tensors.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)).collect();
    }

    /// Shape of a key, if present.
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|t| t.shape.as_slice())
    }
}

/// The files a model folder's weights may be in, in the order they are looked for.
pub const WEIGHT_FILES: [&str; 3] = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"];

/// Reads the weights of a model folder: `model.safetensors`, else the
/// sharded `model.safetensors.index.json`, else `pytorch_model.bin`.
pub fn read_checkpoint(dir: &Path) -> Result<TensorMap, ModelError> {
    let [single, index, pickle] = WEIGHT_FILES.map(|f| dir.join(f));
    if single.exists() {
        Ok(TensorMap::from_map(single.clone(), read_safetensors(&single)?))
    } else if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io { path: index.clone(), source })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::BadCheckpoint { path: index.clone(), reason: e.to_string() })?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| ModelError::BadCheckpoint { path: index.clone(), reason: "no weight_map".into() })?;
        let shards: BTreeSet<&str> = map.values().filter_map(|s| s.as_str()).collect();
        let mut all = BTreeMap::new();
        for shard in shards {
            // A shard is a file of this folder: an absolute path or `..` could name any file at all.
            let inside = Path::new(shard).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                return Err(ModelError::BadCheckpoint {
                    path: index.clone(),
                    reason: format!("weight_map names the shard {shard:?}, which is not a file in the model folder"),
                });
            }
            all.extend(read_safetensors(&dir.join(shard))?);
        }
        Ok(TensorMap::from_map(index, all))
    } else if pickle.exists() {
        Ok(TensorMap::from_map(pickle.clone(), read_pytorch(&pickle)?))
    } else {
        Err(ModelError::NoWeights { path: dir.to_path_buf() })
    }
}

fn to_f32(path: &Path, key: &str, dtype: &str, bytes: &[u8]) -> Result<Vec<f32>, ModelError> {
    Ok(match dtype {
        "F32" => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        "F64" => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        "F16" => bytes.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        "BF16" => {
            bytes.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
        }
        other => {
            return Err(ModelError::BadCheckpoint {
                path: path.into(),
                reason: format!("tensor {key} has dtype {other}; float weights expected"),
            })
        }
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Refuses what is not a regular file (after links): reading `/dev/zero`
/// would never end, and opening a FIFO would wait forever.
fn regular_file(path: &Path) -> Result<(), ModelError> {
    let meta = std::fs::metadata(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
    if meta.is_file() {
        return Ok(());
    }
    Err(ModelError::BadCheckpoint { path: path.into(), reason: "not a regular file".into() })
}

/// Reads every float tensor of a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, HostTensor>, ModelError> {
    regular_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| ModelError::BadCheckpoint { path: path.into(), reason: e.to_string() })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = format!("{:?}", view.dtype());
        if !matches!(dtype.as_str(), "F32" | "F64" | "F16" | "BF16") {
            continue; // integer buffers (e.g. position ids) are not weights
        }
        let data = to_f32(path, &name, &dtype, view.data())?;
        out.insert(name, HostTensor::new(view.shape().to_vec(), data));
    }
    Ok(out)
}

/// Reads every float tensor of a PyTorch pickle checkpoint (`torch.save(state_dict)`).
pub fn read_pytorch(path: &Path) -> Result<BTreeMap<String, HostTensor>, ModelError> {
    regular_file(path)?;
    let reader = pytorch_reader::PytorchReader::new(path)
        .map_err(|e| ModelError::BadCheckpoint { path: path.into(), reason: e.to_string() })?;
    let mut out = BTreeMap::new();
    for (name, t) in reader.into_tensors() {
        let dtype = match t.dtype() {
            pytorch_reader::DType::F32 => "F32",
            pytorch_reader::DType::F64 => "F64",
            pytorch_reader::DType::F16 => "F16",
            pytorch_reader::DType::BF16 => "BF16",
            _ => continue,
        };
        let bytes = t.read().map_err(|source| ModelError::Io { path: path.into(), source })?;
        let data = to_f32(path, &name, dtype, &bytes)?;
        out.insert(name, HostTensor::new(t.shape().to_vec(), data));
    }
    Ok(out)
}

/// Writes tensors as a safetensors file (f32), atomically (temp file + rename).
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, HostTensor>) -> Result<(), ModelError> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, s)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| ModelError::BadCheckpoint { path: path.into(), reason: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| ModelError::BadCheckpoint { path: path.into(), reason: e.to_string() })?;
    crate::util::write_atomic(path, &data).map_err(|source| ModelError::Io { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    #[test]
    fn f16_values() {
        assert_eq!(super::f16_to_f32(0x3c00), 1.0);
        assert_eq!(super::f16_to_f32(0xc000), -2.0);
        assert_eq!(super::f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(super::f16_to_f32(0x7c00).is_infinite());
    }
}
