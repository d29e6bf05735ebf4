//! A writer in lockstep with a reader of the same header keystream.
//!
//! A proxy between two ends of one `wotlk-crypt` stream reads each header with the
//! stream's keystream and writes it on with the same keystream: while every header
//! read goes on unchanged, the writer's keystream bytes are the reader's. The
//! writer then keeps no state of its own ([`FrameCodec::follow`]) and seals a header
//! with the bytes the reader opened it with. Once the two part (a frame dropped,
//! rewritten or added), the writer takes a copy of the reader's state moved to its
//! own place ([`FrameCodec::detach`]), and follows again as soon as the two stand at
//! the same byte of the stream.

use super::codec::Keys;
use super::{FrameCodec, FrameError};
use crate::crypt::HeaderCipher;

impl FrameCodec {
    /// Makes this writer follow `reader`'s keystream from where the reader stands,
    /// between headers: the reader's next header and this writer's are the same
    /// keystream bytes. Plain when the reader is.
    pub fn follow(&mut self, reader: &FrameCodec) {
        self.keys = match reader.own_cipher() {
            Some(cipher) => Keys::Follows {
                stream: cipher.stream_id(),
                at: cipher.position(),
            },
            None => Keys::Off,
        };
    }

    /// Encrypts, in place, the header `reader` has just read (with
    /// [`FrameCodec::next_head`]), as it goes on unchanged. Following the reader in
    /// step, it puts back the bytes the header came as; a writer with its own
    /// keystream applies it (and follows again if the two meet).
    #[inline]
    pub fn seal_forwarded(
        &mut self,
        reader: &FrameCodec,
        header: &mut [u8],
    ) -> Result<(), FrameError> {
        match (&mut self.keys, &reader.keys) {
            (Keys::Off, _) => Ok(()),
            (Keys::Follows { stream, at }, Keys::Own(read))
                if read.stream_id() == *stream && read.head_at() == *at =>
            {
                read.reseal(header);
                *at += header.len() as u64;
                Ok(())
            }
            _ => self.seal_apart(reader, header),
        }
    }

    /// [`FrameCodec::seal_forwarded`] when this writer is not in step with `reader`.
    #[inline(never)]
    fn seal_apart(&mut self, reader: &FrameCodec, header: &mut [u8]) -> Result<(), FrameError> {
        self.detach(reader)?;
        let Keys::Own(own) = &mut self.keys else {
            return Ok(());
        };
        match reader.own_cipher() {
            Some(read)
                if read.stream_id() == own.stream_id() && read.head_at() == own.position() =>
            {
                read.reseal(header);
                self.keys = Keys::Follows {
                    stream: read.stream_id(),
                    at: read.head_at() + header.len() as u64,
                };
            }
            _ => own.apply(header),
        }
        Ok(())
    }

    /// Gives a follower a keystream of its own, `reader`'s moved to where the
    /// follower stands, before it writes what the reader did not read. Nothing for a
    /// codec that is not following.
    pub fn detach(&mut self, reader: &FrameCodec) -> Result<(), FrameError> {
        let Keys::Follows { stream, at } = self.keys else {
            return Ok(());
        };
        match reader.own_cipher() {
            Some(cipher) if cipher.stream_id() == stream => {
                let mut own = Box::new(cipher.clone());
                own.seek(at);
                self.keys = Keys::Own(own);
                Ok(())
            }
            _ => Err(FrameError::KeystreamFollows),
        }
    }

    /// Whether this writer follows a reader's keystream instead of holding one.
    pub fn is_following(&self) -> bool {
        matches!(self.keys, Keys::Follows { .. })
    }

    /// The keystream this codec holds, if it holds one.
    fn own_cipher(&self) -> Option<&HeaderCipher> {
        match &self.keys {
            Keys::Own(cipher) => Some(cipher),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Four codecs sit in every session, idle or not.
    #[test]
    fn the_keystream_state_costs_no_more_than_a_pointer_and_a_position() {
        assert_eq!(std::mem::size_of::<super::Keys>(), 16);
    }
}
