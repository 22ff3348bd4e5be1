//! Framing: each message is a 4-byte big-endian length followed by that many
//! bytes (a versioned envelope). Frames over the configured limit are refused
//! on both sides; a reader meeting one closes the connection.

use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec, LengthDelimitedCodecError};
use tokio_util::sync::CancellationToken;

/// Default largest frame: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;

/// Frames a connection's writer may have queued before senders wait.
pub(crate) const WRITE_QUEUE: usize = 1024;

/// Most frames written between two flushes.
const WRITE_BATCH: usize = 128;

/// How long closing a stream (sending TLS close_notify) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes queued frames until every sender is gone or `stop` fires, flushing
/// only when the queue runs dry (or after a batch), then closes the stream
/// (TLS close_notify).
pub(crate) async fn write_loop<W>(
    mut sink: FramedWrite<W, LengthDelimitedCodec>,
    mut rx: mpsc::Receiver<Bytes>,
    stop: CancellationToken,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        let n = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, WRITE_BATCH) => n,
            _ = stop.cancelled() => 0,
        };
        if n == 0 {
            break;
        }
        for frame in batch.drain(..) {
            sink.feed(frame).await?;
        }
        SinkExt::<Bytes>::flush(&mut sink).await?;
    }
    tokio::time::timeout(CLOSE_TIMEOUT, SinkExt::<Bytes>::close(&mut sink))
        .await
        .unwrap_or(Ok(()))
}

/// The length-delimited codec with a `max_frame_len` limit.
pub(crate) fn codec(max_frame_len: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_frame_len)
        .new_codec()
}

/// Whether a read error is the codec refusing an oversized frame.
pub(crate) fn is_oversized(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    #[test]
    fn round_trip_and_limit() {
        let mut c = codec(8);
        let mut buf = BytesMut::new();
        c.encode(Bytes::from_static(b"12345678"), &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 8]);
        assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], b"12345678");
        assert!(
            c.encode(Bytes::from_static(b"123456789"), &mut buf)
                .is_err()
        );
        let mut big = BytesMut::new();
        big.put_u32(9);
        let err = c.decode(&mut big).unwrap_err();
        assert!(is_oversized(&err), "{err}");
    }
}
