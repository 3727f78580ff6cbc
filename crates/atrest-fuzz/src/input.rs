//! Decoding fuzzer bytes into parameters: total, never failing, big-endian.

/// A cursor over fuzzer input. Reads past the end yield zeros, so every input decodes.
pub(crate) struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    pub(crate) fn u24(&mut self) -> u32 {
        u32::from_be_bytes([0, self.byte(), self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// Everything not consumed yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Builds `n` bytes of deterministic plaintext from `pattern` (or a counter if it is empty).
pub(crate) fn plaintext(n: usize, pattern: &[u8], salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let byte = match pattern.len() {
                0 => 0,
                len => pattern[i % len],
            };
            // `i % 251` fits a byte; the salt keeps repeated segments distinct.
            let counter = u8::try_from(i % 251).unwrap_or(0);
            byte ^ counter.wrapping_add(salt)
        })
        .collect()
}
