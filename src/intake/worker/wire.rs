//! Frames between the service and a parse worker, over the worker's stdin
//! and stdout.
//!
//! A frame is a JSON head (the request or answer) followed by raw byte
//! blobs (message bodies, attachments, extracted files), so large content
//! is never JSON-encoded:
//!
//! ```text
//! u32 LE head length | head (JSON) | u32 LE blob count | (u64 LE length | bytes)*
//! ```
//!
//! Both sides read under `FrameLimits`: a length beyond them is a protocol
//! error, never an allocation.

use serde::{Serialize, de::DeserializeOwned};
use std::io::{Read, Write};

/// Caps on one frame read. Each side passes what the other may send.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// The JSON head: text of a message plus its metadata.
    pub max_head: usize,
    pub max_blobs: usize,
    /// All blobs together.
    pub max_total: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("pipe: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame over its limit: {0}")]
    TooLarge(&'static str),
    #[error("bad frame head: {0}")]
    Json(#[from] serde_json::Error),
}

/// One decoded frame.
#[derive(Debug)]
pub struct Frame<T> {
    pub head: T,
    pub blobs: Vec<Vec<u8>>,
}

/// The bytes of a frame, ready to write.
pub fn encode<T: Serialize>(head: &T, blobs: &[&[u8]]) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(head)?;
    let total: usize = blobs.iter().map(|b| b.len() + 8).sum();
    let mut out = Vec::with_capacity(8 + json.len() + total);
    out.extend_from_slice(
        &u32::try_from(json.len())
            .map_err(|_| WireError::TooLarge("head"))?
            .to_le_bytes(),
    );
    out.extend_from_slice(&json);
    out.extend_from_slice(
        &u32::try_from(blobs.len())
            .map_err(|_| WireError::TooLarge("blobs"))?
            .to_le_bytes(),
    );
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Reads one frame, or `None` at a clean end of input before a frame.
pub fn read<T: DeserializeOwned, R: Read>(
    r: &mut R,
    limits: FrameLimits,
) -> Result<Option<Frame<T>>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let head_len = u32::from_le_bytes(len) as usize;
    if head_len > limits.max_head {
        return Err(WireError::TooLarge("head"));
    }
    let mut head = vec![0u8; head_len];
    r.read_exact(&mut head)?;
    r.read_exact(&mut len)?;
    let count = u32::from_le_bytes(len) as usize;
    if count > limits.max_blobs {
        return Err(WireError::TooLarge("blob count"));
    }
    let mut blobs = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let mut n = [0u8; 8];
        r.read_exact(&mut n)?;
        let n = usize::try_from(u64::from_le_bytes(n)).map_err(|_| WireError::TooLarge("blob"))?;
        total = total.saturating_add(n);
        if total > limits.max_total {
            return Err(WireError::TooLarge("blobs"));
        }
        let mut blob = vec![0u8; n];
        r.read_exact(&mut blob)?;
        blobs.push(blob);
    }
    Ok(Some(Frame {
        head: serde_json::from_slice(&head)?,
        blobs,
    }))
}

/// Writes one frame and flushes.
pub fn write<T: Serialize, W: Write>(
    w: &mut W,
    head: &T,
    blobs: &[&[u8]],
) -> Result<(), WireError> {
    w.write_all(&encode(head, blobs)?)?;
    w.flush()?;
    Ok(())
}

/// The async reading side, for the service.
pub async fn read_async<T: DeserializeOwned, R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    limits: FrameLimits,
) -> Result<Frame<T>, WireError> {
    use tokio::io::AsyncReadExt;
    let head_len = r.read_u32_le().await? as usize;
    if head_len > limits.max_head {
        return Err(WireError::TooLarge("head"));
    }
    let mut head = vec![0u8; head_len];
    r.read_exact(&mut head).await?;
    let count = r.read_u32_le().await? as usize;
    if count > limits.max_blobs {
        return Err(WireError::TooLarge("blob count"));
    }
    let mut blobs = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let n = usize::try_from(r.read_u64_le().await?).map_err(|_| WireError::TooLarge("blob"))?;
        total = total.saturating_add(n);
        if total > limits.max_total {
            return Err(WireError::TooLarge("blobs"));
        }
        let mut blob = vec![0u8; n];
        r.read_exact(&mut blob).await?;
        blobs.push(blob);
    }
    Ok(Frame {
        head: serde_json::from_slice(&head)?,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits {
        max_head: 1024,
        max_blobs: 4,
        max_total: 1024,
    };

    #[test]
    fn round_trip_and_limits() {
        let bytes = encode(&vec!["head"], &[b"one", b"", &[0u8; 100]]).unwrap();
        let f: Frame<Vec<String>> = read(&mut bytes.as_slice(), LIMITS).unwrap().unwrap();
        assert_eq!(f.head, vec!["head"]);
        assert_eq!(f.blobs, vec![b"one".to_vec(), vec![], vec![0u8; 100]]);
        assert!(read::<(), _>(&mut [].as_slice(), LIMITS).unwrap().is_none());

        let big = encode(&(), &[&[1u8; 2000]]).unwrap();
        assert!(matches!(
            read::<(), _>(&mut big.as_slice(), LIMITS),
            Err(WireError::TooLarge("blobs"))
        ));
        // A hostile length is refused before anything is allocated.
        let mut lie = 5u32.to_le_bytes().to_vec();
        lie.extend_from_slice(b"null\n");
        lie.extend_from_slice(&1u32.to_le_bytes());
        lie.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(read::<(), _>(&mut lie.as_slice(), LIMITS).is_err());
        let truncated = &bytes[..bytes.len() - 10];
        assert!(read::<Vec<String>, _>(&mut &truncated[..], LIMITS).is_err());
    }
}
