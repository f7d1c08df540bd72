//! Bounded decompression of request bodies.
//!
//! A compressed body is expanded in one streaming pass into a buffer that may not grow past the
//! receiver's size limit: a zip bomb (a few KB that expand to gigabytes) is refused as soon as
//! the output passes the limit, having cost at most the limit in memory and the time to produce
//! it.

use std::io::Read;

use bytes::Bytes;

/// A request body's compression, from `Content-Encoding` or `grpc-encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// gzip (RFC 1952); concatenated members are read as one stream, as Go's reader does.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
    /// zlib-wrapped deflate (RFC 1950), which HTTP calls both `deflate` and `zlib`.
    Zlib,
}

impl Encoding {
    /// The encoding an HTTP `Content-Encoding` (or `grpc-encoding`) value names; `None` for ones
    /// not decoded here. Case does not matter; an empty value is identity.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        [("", Self::Identity), ("identity", Self::Identity), ("gzip", Self::Gzip), ("zstd", Self::Zstd)]
            .into_iter()
            .chain([("deflate", Self::Zlib), ("zlib", Self::Zlib)])
            .find_map(|(known, encoding)| known.eq_ignore_ascii_case(name).then_some(encoding))
    }

    /// The name used on the wire.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Zlib => "deflate",
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The decompressed body would exceed the limit.
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not valid data of its declared encoding.
    #[error("body is not valid {encoding} data: {source}")]
    Corrupt {
        /// The declared encoding's name.
        encoding: &'static str,
        /// What the decoder said.
        #[source]
        source: std::io::Error,
    },
}

/// Decompresses `body` (declared as `encoding`) into at most `limit` bytes. Identity returns the
/// body as is (it was already held to the limit while being read).
///
/// # Errors
/// [`DecompressError::TooLarge`] as soon as the output passes `limit`;
/// [`DecompressError::Corrupt`] when the body is not valid data of its encoding (including a
/// truncated stream).
pub fn decompress(encoding: Encoding, body: Bytes, limit: usize) -> Result<Bytes, DecompressError> {
    let corrupt = |source| DecompressError::Corrupt { encoding: encoding.name(), source };
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(&body[..]), body.len(), limit, corrupt),
        Encoding::Zlib => read_bounded(flate2::read::ZlibDecoder::new(&body[..]), body.len(), limit, corrupt),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(&body[..]).map_err(corrupt)?;
            read_bounded(decoder, body.len(), limit, corrupt)
        }
    }
}

fn read_bounded(
    decoder: impl Read,
    compressed_len: usize,
    limit: usize,
    corrupt: impl Fn(std::io::Error) -> DecompressError,
) -> Result<Bytes, DecompressError> {
    // Trace data compresses about 5-10x; start there and let the vector grow, never past the limit.
    let mut output = Vec::with_capacity(compressed_len.saturating_mul(8).clamp(4096, limit.max(4096)));
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(limit_plus_one).read_to_end(&mut output).map_err(corrupt)?;
    if output.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(Bytes::from(output))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    #[test]
    fn round_trips_every_encoding() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let zlib = {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&data).unwrap();
            Bytes::from(encoder.finish().unwrap())
        };
        let zstd = Bytes::from(zstd::encode_all(&data[..], 1).unwrap());
        for (encoding, body) in [(Encoding::Gzip, gzip(&data)), (Encoding::Zlib, zlib), (Encoding::Zstd, zstd)] {
            assert_eq!(decompress(encoding, body, data.len()).unwrap(), data, "{encoding:?}");
        }
    }

    #[test]
    fn refuses_output_one_byte_over_the_limit() {
        let data = vec![7u8; 10_000];
        assert!(decompress(Encoding::Gzip, gzip(&data), 10_000).is_ok());
        assert!(matches!(
            decompress(Encoding::Gzip, gzip(&data), 9_999),
            Err(DecompressError::TooLarge { limit: 9_999 })
        ));
    }

    #[test]
    fn stops_a_zstd_bomb_at_the_limit() {
        // 1 GiB of zeros compresses to a few tens of KB; the limit stops it at 1 MiB.
        let bomb = {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..1024 {
                encoder.write_all(&zeros).unwrap();
            }
            Bytes::from(encoder.finish().unwrap())
        };
        assert!(bomb.len() < 200_000);
        assert!(matches!(decompress(Encoding::Zstd, bomb, 1 << 20), Err(DecompressError::TooLarge { .. })));
    }

    #[test]
    fn reports_corrupt_and_truncated_streams() {
        let not_gzip = Bytes::from_static(b"this is not gzip at all");
        assert!(matches!(decompress(Encoding::Gzip, not_gzip, 1 << 20), Err(DecompressError::Corrupt { .. })));
        let full = gzip(&[1u8; 5000]);
        let truncated = full.slice(..full.len() / 2);
        assert!(matches!(decompress(Encoding::Gzip, truncated, 1 << 20), Err(DecompressError::Corrupt { .. })));
        let not_zstd = Bytes::from_static(b"\x28\xb5\x2f\xfd garbage");
        assert!(matches!(decompress(Encoding::Zstd, not_zstd, 1 << 20), Err(DecompressError::Corrupt { .. })));
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_ones_are_none() {
        assert_eq!(Encoding::from_name("GZip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_name(""), Some(Encoding::Identity));
        assert_eq!(Encoding::from_name("zlib"), Some(Encoding::Zlib));
        assert_eq!(Encoding::from_name("snappy"), None);
        assert_eq!(Encoding::from_name("br"), None);
    }
}
