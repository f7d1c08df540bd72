//! gzip and zstd for request bodies, and bounded decompression of (small) response bodies.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::settings::Compression;

/// gzip's level when the config leaves it at 0: what Go's `gzip.DefaultCompression` means, so the
/// Collector's default costs the same here.
const GZIP_DEFAULT_LEVEL: u32 = 6;

/// Why a body could not be compressed or decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    /// The codec failed (it only does on invalid input when decompressing).
    #[error("{compression:?} failed: {source}")]
    Codec {
        /// Which algorithm.
        compression: Compression,
        /// What it said.
        source: std::io::Error,
    },
    /// A decompressed body would pass the limit.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Compresses `data` with `compression` at `level` (0 = the algorithm's default).
///
/// # Errors
/// When the codec fails, which for compression into memory only happens on allocation failure.
pub fn compress(compression: Compression, level: i32, data: &[u8]) -> Result<Bytes, CompressionError> {
    let codec_error = |source| CompressionError::Codec { compression, source };
    match compression {
        Compression::None => Ok(Bytes::copy_from_slice(data)),
        Compression::Gzip => {
            let level = u32::try_from(level).ok().filter(|level| (1..=9).contains(level)).unwrap_or(GZIP_DEFAULT_LEVEL);
            // Compressed telemetry is typically a fifth to a tenth of the input.
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::new(level));
            encoder.write_all(data).map_err(codec_error)?;
            Ok(Bytes::from(encoder.finish().map_err(codec_error)?))
        }
        Compression::Zstd => {
            let level = if level == 0 { zstd::DEFAULT_COMPRESSION_LEVEL } else { level };
            zstd::bulk::compress(data, level).map(Bytes::from).map_err(codec_error)
        }
    }
}

/// Decompresses `data`, refusing output over `limit` bytes.
///
/// # Errors
/// Invalid compressed data, or output over the limit.
pub fn decompress(compression: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let codec_error = |source| CompressionError::Codec { compression, source };
    let mut output = Vec::new();
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let read = match compression {
        Compression::None => return Ok(data.to_vec()),
        Compression::Gzip => flate2::read::GzDecoder::new(data).take(limit_u64 + 1).read_to_end(&mut output),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data).map_err(codec_error)?.take(limit_u64 + 1).read_to_end(&mut output)
        }
    };
    read.map_err(codec_error)?;
    if output.len() > limit {
        return Err(CompressionError::TooLarge { limit });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_level() {
        let data = b"resourceSpans resourceSpans resourceSpans scopeSpans spans spans spans".repeat(50);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            for level in [0, 1, 9] {
                let compressed = compress(compression, level, &data).unwrap();
                assert_eq!(decompress(compression, &compressed, data.len()).unwrap(), data, "{compression:?} {level}");
            }
        }
    }

    #[test]
    fn refuses_output_over_the_limit() {
        let data = vec![0u8; 10_000];
        for compression in [Compression::Gzip, Compression::Zstd] {
            let compressed = compress(compression, 0, &data).unwrap();
            assert!(matches!(
                decompress(compression, &compressed, 9_999),
                Err(CompressionError::TooLarge { limit: 9_999 })
            ));
        }
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            assert!(decompress(compression, b"definitely not compressed", 1_000).is_err());
        }
    }
}
