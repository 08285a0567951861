//! Tokenizers built from GGUF metadata (`tokenizer.ggml.*`).
//!
//! * Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): bytes are mapped to printable characters
//!   (GPT-2's byte↔unicode table), the text is split by the pre-tokenizer regexes that
//!   `tokenizer.ggml.pre` names (applied in sequence, each splitting the pieces of the previous
//!   one, as llama.cpp and Hugging Face do), and each piece is merged by BPE rank.
//! * SentencePiece-style (`"llama"`): spaces become `▁` (with a prefix space when the model asks),
//!   the highest-scoring adjacent pair is merged while the merge is in the vocabulary, and
//!   characters without a token fall back to `<0xNN>` byte tokens.
//!
//! Special tokens (control and user-defined types) are matched in the text only when
//! `parse_special` is set; otherwise their text is tokenized like any other, so that
//! `decode(encode(text)) == text` for every UTF-8 string.

use crate::gguf::{GgufError, GgufFile};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

/// Token type ids of `tokenizer.ggml.token_type`.
pub mod token_type {
    /// Normal token.
    pub const NORMAL: i32 = 1;
    /// Unknown token.
    pub const UNKNOWN: i32 = 2;
    /// Control token (BOS, EOS, `<|im_start|>`...).
    pub const CONTROL: i32 = 3;
    /// User-defined token (matched as a whole).
    pub const USER_DEFINED: i32 = 4;
    /// Unused.
    pub const UNUSED: i32 = 5;
    /// Byte token `<0xNN>`.
    pub const BYTE: i32 = 6;
}

/// Tokenizer construction errors.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Metadata missing or malformed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The tokenizer model is not supported.
    #[error("tokenizer.ggml.model '{0}' is not supported (supported: gpt2, llama)")]
    UnsupportedModel(String),
    /// The pre-tokenizer is not supported.
    #[error("tokenizer.ggml.pre '{0}' is not supported (supported: default, gpt2, smollm, llama-bpe/llama3, starcoder, refact)")]
    UnsupportedPre(String),
    /// Inconsistent vocabulary.
    #[error("bad vocabulary: {0}")]
    Vocab(String),
}

/// Plain-data description of a vocabulary (what GGUF metadata holds).
#[derive(Debug, Clone, Default)]
pub struct TokenizerVocab {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub model: String,
    /// Pre-tokenizer name (BPE only).
    pub pre: Option<String>,
    /// Token texts.
    pub tokens: Vec<String>,
    /// Token types (see [`token_type`]); empty means all normal.
    pub token_types: Vec<i32>,
    /// Token scores (SentencePiece).
    pub scores: Vec<f32>,
    /// BPE merges "a b", in rank order.
    pub merges: Vec<String>,
    /// BOS id.
    pub bos_id: Option<u32>,
    /// EOS id.
    pub eos_id: Option<u32>,
    /// Unknown-token id.
    pub unk_id: Option<u32>,
    /// Padding id.
    pub pad_id: Option<u32>,
    /// Prepend BOS when encoding with `add_special`.
    pub add_bos: bool,
    /// Append EOS when encoding with `add_special`.
    pub add_eos: bool,
    /// SentencePiece: prepend a space to the text.
    pub add_space_prefix: bool,
}

#[allow(clippy::large_enum_variant)]
enum Kind {
    Bpe {
        regexes: Vec<fancy_regex::Regex>,
        merges: HashMap<(u32, u32), (u32, u32)>, // (left, right) → (rank, merged)
        byte_to_char: [char; 256],
        char_to_byte: HashMap<char, u8>,
        cache: Mutex<HashMap<String, Vec<u32>>>,
    },
    Spm {
        byte_tokens: [Option<u32>; 256],
    },
}

/// A tokenizer.
pub struct Tokenizer {
    vocab: TokenizerVocab,
    ids: HashMap<String, u32>,
    kind: Kind,
    /// Texts that are split off as their own token before tokenizing: the user-defined tokens
    /// always (llama.cpp matches them whatever `parse_special` says, e.g. Gemma's runs of
    /// spaces), and the control tokens too with `parse_special`. Leftmost-longest matchers with
    /// the token of each pattern.
    user_defined: Option<(aho_corasick::AhoCorasick, Vec<u32>)>,
    specials: Option<(aho_corasick::AhoCorasick, Vec<u32>)>,
    eog: Vec<u32>,
}

/// A leftmost-longest matcher of the given (text, token) pairs (None when there are none).
fn matcher(pairs: &[(String, u32)]) -> Option<(aho_corasick::AhoCorasick, Vec<u32>)> {
    if pairs.is_empty() {
        return None;
    }
    let ac = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(pairs.iter().map(|(s, _)| s.as_str()))
        .expect("token texts build a matcher");
    Some((ac, pairs.iter().map(|(_, id)| *id).collect()))
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.vocab.model)
            .field("vocab", &self.vocab.tokens.len())
            .finish()
    }
}

/// GPT-2's reversible byte → printable-character table.
fn gpt2_byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\0');
            n += 1;
            c
        };
    }
    table
}

const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2 / 2.5 / 3: Llama 3's pattern with single digits.
const QWEN2_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The regex sequence of a pre-tokenizer name (as llama.cpp's `llama-vocab.cpp` defines them).
fn pre_regexes(pre: &str) -> Option<Vec<&'static str>> {
    Some(match pre {
        "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => vec![GPT2_PATTERN],
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            vec![r"\p{N}", GPT2_PATTERN]
        }
        "llama-bpe" | "llama3" | "llama-v3" | "dbrx" | "smaug-bpe" => vec![LLAMA3_PATTERN],
        "qwen2" | "deepseek-r1-qwen" => vec![QWEN2_PATTERN],
        _ => return None,
    })
}

/// Split `text` by `re`, keeping both matches and the gaps between them as pieces.
fn split_keep(re: &fancy_regex::Regex, text: &str, out: &mut Vec<(usize, usize)>, base: usize) {
    let mut last = 0;
    let mut start = 0;
    while start <= text.len() {
        let m = match re.find_from_pos(text, start) {
            Ok(Some(m)) => m,
            _ => break,
        };
        if m.end() == m.start() {
            // empty match: step over one character
            start = m.end() + text[m.end()..].chars().next().map_or(1, |c| c.len_utf8());
            continue;
        }
        if m.start() > last {
            out.push((base + last, base + m.start()));
        }
        out.push((base + m.start(), base + m.end()));
        last = m.end();
        start = m.end();
    }
    if last < text.len() {
        out.push((base + last, base + text.len()));
    }
}

impl Tokenizer {
    /// Build from plain vocabulary data.
    pub fn from_vocab(v: TokenizerVocab) -> Result<Tokenizer, TokenizerError> {
        let n = v.tokens.len();
        if n == 0 {
            return Err(TokenizerError::Vocab("the vocabulary is empty".into()));
        }
        if !v.token_types.is_empty() && v.token_types.len() != n {
            return Err(TokenizerError::Vocab(format!(
                "{} token types for {n} tokens",
                v.token_types.len()
            )));
        }
        if !v.scores.is_empty() && v.scores.len() != n {
            return Err(TokenizerError::Vocab(format!(
                "{} scores for {n} tokens",
                v.scores.len()
            )));
        }
        for (name, id) in [
            ("bos", v.bos_id),
            ("eos", v.eos_id),
            ("unk", v.unk_id),
            ("padding", v.pad_id),
        ] {
            if let Some(id) = id {
                if id as usize >= n {
                    return Err(TokenizerError::Vocab(format!(
                        "{name} token id {id} is outside the vocabulary of {n}"
                    )));
                }
            }
        }
        let mut ids = HashMap::with_capacity(n);
        for (i, t) in v.tokens.iter().enumerate() {
            ids.entry(t.clone()).or_insert(i as u32);
        }
        let ty = |i: usize| v.token_types.get(i).copied().unwrap_or(token_type::NORMAL);
        let pairs = |types: &[i32]| -> Vec<(String, u32)> {
            (0..n)
                .filter(|&i| types.contains(&ty(i)) && !v.tokens[i].is_empty())
                .map(|i| (v.tokens[i].clone(), i as u32))
                .collect()
        };
        let user_defined = matcher(&pairs(&[token_type::USER_DEFINED]));
        let specials = matcher(&pairs(&[token_type::CONTROL, token_type::USER_DEFINED]));
        let mut eog: Vec<u32> = v.eos_id.into_iter().collect();
        for s in [
            "<|im_end|>",
            "<|endoftext|>",
            "<|eot_id|>",
            "<end_of_turn>",
            "<|end|>",
            "</s>",
        ] {
            if let Some(&id) = ids.get(s) {
                if ty(id as usize) == token_type::CONTROL && !eog.contains(&id) {
                    eog.push(id);
                }
            }
        }
        let kind = match v.model.as_str() {
            "gpt2" => {
                let pre = v.pre.clone().unwrap_or_else(|| "default".into());
                let pats =
                    pre_regexes(&pre).ok_or_else(|| TokenizerError::UnsupportedPre(pre.clone()))?;
                let regexes = pats
                    .iter()
                    .map(|p| {
                        fancy_regex::Regex::new(p)
                            .map_err(|e| TokenizerError::Vocab(format!("pre-tokenizer regex: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut merges = HashMap::with_capacity(v.merges.len());
                for (rank, m) in v.merges.iter().enumerate() {
                    let (a, b) = m.split_once(' ').ok_or_else(|| {
                        TokenizerError::Vocab(format!("merge #{rank} '{m}' has no space"))
                    })?;
                    let (Some(&ia), Some(&ib), Some(&im)) =
                        (ids.get(a), ids.get(b), ids.get(&format!("{a}{b}")))
                    else {
                        continue; // a merge whose parts are not tokens can never fire
                    };
                    merges.entry((ia, ib)).or_insert((rank as u32, im));
                }
                let byte_to_char = gpt2_byte_chars();
                let char_to_byte = byte_to_char
                    .iter()
                    .enumerate()
                    .map(|(b, &c)| (c, b as u8))
                    .collect();
                Kind::Bpe {
                    regexes,
                    merges,
                    byte_to_char,
                    char_to_byte,
                    cache: Mutex::new(HashMap::new()),
                }
            }
            "llama" => {
                let mut byte_tokens = [None; 256];
                for (b, slot) in byte_tokens.iter_mut().enumerate() {
                    *slot = ids.get(&format!("<0x{b:02X}>")).copied();
                }
                Kind::Spm { byte_tokens }
            }
            other => return Err(TokenizerError::UnsupportedModel(other.into())),
        };
        Ok(Tokenizer {
            vocab: v,
            ids,
            kind,
            user_defined,
            specials,
            eog,
        })
    }

    /// Build from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model = g.get_str("tokenizer.ggml.model")?.to_string();
        let tokens: Vec<String> = g
            .get_string_array("tokenizer.ggml.tokens")?
            .into_iter()
            .map(String::from)
            .collect();
        let opt_id = |k: &str| g.get_u32_opt(k);
        let is_spm = model == "llama";
        let v = TokenizerVocab {
            pre: g.get_str_opt("tokenizer.ggml.pre")?.map(String::from),
            token_types: g
                .get_i32_array_opt("tokenizer.ggml.token_type")?
                .unwrap_or_default(),
            scores: g
                .get_f32_array_opt("tokenizer.ggml.scores")?
                .unwrap_or_default(),
            merges: g
                .get_string_array_opt("tokenizer.ggml.merges")?
                .unwrap_or_default()
                .into_iter()
                .map(String::from)
                .collect(),
            bos_id: opt_id("tokenizer.ggml.bos_token_id")?,
            eos_id: opt_id("tokenizer.ggml.eos_token_id")?,
            unk_id: opt_id("tokenizer.ggml.unknown_token_id")?,
            pad_id: opt_id("tokenizer.ggml.padding_token_id")?,
            // llama.cpp's defaults: SPM adds BOS and a space prefix, BPE adds neither
            add_bos: g
                .get_bool_opt("tokenizer.ggml.add_bos_token")?
                .unwrap_or(is_spm),
            add_eos: g
                .get_bool_opt("tokenizer.ggml.add_eos_token")?
                .unwrap_or(false),
            add_space_prefix: g
                .get_bool_opt("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(is_spm),
            tokens,
            model,
        };
        Self::from_vocab(v)
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab.tokens.len()
    }
    /// BOS id.
    pub fn bos_id(&self) -> Option<u32> {
        self.vocab.bos_id
    }
    /// EOS id.
    pub fn eos_id(&self) -> Option<u32> {
        self.vocab.eos_id
    }
    /// Whether encoding with `add_special` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos && self.vocab.bos_id.is_some()
    }
    /// End-of-generation token (EOS, `<|im_end|>`, `<|endoftext|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    /// Id of a token text.
    pub fn token_to_id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
    /// Text of a token as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(String::as_str)
    }

    fn ttype(&self, id: u32) -> i32 {
        self.vocab
            .token_types
            .get(id as usize)
            .copied()
            .unwrap_or(token_type::NORMAL)
    }

    /// The bytes a token stands for in decoded text.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(text) = self.vocab.tokens.get(id as usize) else {
            return Vec::new();
        };
        match self.ttype(id) {
            token_type::CONTROL | token_type::USER_DEFINED | token_type::UNKNOWN => {
                return text.as_bytes().to_vec()
            }
            _ => {}
        }
        match &self.kind {
            Kind::Bpe { char_to_byte, .. } => {
                let mut out = Vec::with_capacity(text.len());
                for c in text.chars() {
                    match char_to_byte.get(&c) {
                        Some(&b) => out.push(b),
                        None => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                out
            }
            Kind::Spm { .. } => {
                if self.ttype(id) == token_type::BYTE {
                    if let Some(h) = text.strip_prefix("<0x").and_then(|s| s.strip_suffix('>')) {
                        if let Ok(b) = u8::from_str_radix(h, 16) {
                            return vec![b];
                        }
                    }
                }
                text.replace('\u{2581}', " ").into_bytes()
            }
        }
    }

    /// Decode token ids to text (invalid UTF-8 sequences become U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if Some(id) == self.vocab.bos_id {
                continue;
            }
            bytes.extend(self.token_bytes(id));
        }
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        // SentencePiece: drop the prefix space added at encoding
        if matches!(self.kind, Kind::Spm { .. })
            && self.vocab.add_space_prefix
            && s.starts_with(' ')
        {
            s.remove(0);
        }
        s
    }

    /// Encode text. `add_special` applies the model's BOS/EOS rules; `parse_special` matches
    /// special-token texts (e.g. `<|im_start|>`) as those tokens.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        if add_special && self.add_bos() {
            out.extend(self.vocab.bos_id);
        }
        // split off the user-defined tokens, and the control tokens when asked
        let m = if parse_special {
            &self.specials
        } else {
            &self.user_defined
        };
        let mut segments: Vec<Result<&str, u32>> = Vec::new();
        match m {
            Some((ac, ids)) => {
                let mut at = 0;
                for hit in ac.find_iter(text) {
                    if hit.start() > at {
                        segments.push(Ok(&text[at..hit.start()]));
                    }
                    segments.push(Err(ids[hit.pattern().as_usize()]));
                    at = hit.end();
                }
                if at < text.len() {
                    segments.push(Ok(&text[at..]));
                }
            }
            None if !text.is_empty() => segments.push(Ok(text)),
            None => {}
        }
        let mut first_text = true;
        for seg in segments {
            match seg {
                Err(id) => out.push(id),
                Ok(s) => {
                    match &self.kind {
                        Kind::Bpe { .. } => self.encode_bpe(s, &mut out),
                        Kind::Spm { .. } => {
                            self.encode_spm(s, first_text && self.vocab.add_space_prefix, &mut out)
                        }
                    }
                    first_text = false;
                }
            }
        }
        if add_special && self.vocab.add_eos {
            out.extend(self.vocab.eos_id);
        }
        out
    }

    fn encode_bpe(&self, text: &str, out: &mut Vec<u32>) {
        let Kind::Bpe {
            regexes,
            merges,
            byte_to_char,
            cache,
            ..
        } = &self.kind
        else {
            return;
        };
        // pre-tokenize: each regex splits the pieces of the previous one
        let mut pieces = vec![(0usize, text.len())];
        for re in regexes {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for &(a, b) in &pieces {
                split_keep(re, &text[a..b], &mut next, a);
            }
            pieces = next;
        }
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        for (a, b) in pieces {
            let piece = &text[a..b];
            if let Some(ids) = cache.get(piece) {
                out.extend_from_slice(ids);
                continue;
            }
            // bytes → GPT-2 characters → initial symbols
            let mut syms: Vec<u32> = Vec::with_capacity(piece.len());
            let mut buf = [0u8; 4];
            for &byte in piece.as_bytes() {
                let c = byte_to_char[byte as usize];
                match self.ids.get(c.encode_utf8(&mut buf) as &str) {
                    Some(&id) => syms.push(id),
                    None => syms.extend(self.vocab.unk_id),
                }
            }
            // merge the lowest-ranked adjacent pair, leftmost first, until none applies
            loop {
                let mut best: Option<(u32, usize, u32)> = None; // (rank, position, merged)
                for i in 0..syms.len().saturating_sub(1) {
                    if let Some(&(rank, merged)) = merges.get(&(syms[i], syms[i + 1])) {
                        if best.is_none_or(|(r, _, _)| rank < r) {
                            best = Some((rank, i, merged));
                        }
                    }
                }
                let Some((rank, _, _)) = best else { break };
                // apply every non-overlapping occurrence of this pair, left to right
                let mut merged_syms = Vec::with_capacity(syms.len());
                let mut i = 0;
                while i < syms.len() {
                    if i + 1 < syms.len() {
                        if let Some(&(r, m)) = merges.get(&(syms[i], syms[i + 1])) {
                            if r == rank {
                                merged_syms.push(m);
                                i += 2;
                                continue;
                            }
                        }
                    }
                    merged_syms.push(syms[i]);
                    i += 1;
                }
                syms = merged_syms;
            }
            if cache.len() < 1 << 16 {
                cache.insert(piece.to_string(), syms.clone());
            }
            out.extend_from_slice(&syms);
        }
    }

    fn encode_spm(&self, text: &str, prefix_space: bool, out: &mut Vec<u32>) {
        let Kind::Spm { byte_tokens } = &self.kind else {
            return;
        };
        let mut norm = String::with_capacity(text.len() + 3);
        if prefix_space {
            norm.push('\u{2581}');
        }
        norm.push_str(&text.replace(' ', "\u{2581}"));
        // symbols: one per character, as a doubly linked list over byte ranges
        let starts: Vec<usize> = norm.char_indices().map(|(i, _)| i).collect();
        let n = starts.len();
        if n == 0 {
            return;
        }
        let mut range: Vec<(usize, usize)> = (0..n)
            .map(|i| {
                (
                    starts[i],
                    if i + 1 < n { starts[i + 1] } else { norm.len() },
                )
            })
            .collect();
        let mut prev: Vec<isize> = (0..n as isize).map(|i| i - 1).collect();
        let mut next: Vec<isize> = (0..n as isize)
            .map(|i| if i + 1 < n as isize { i + 1 } else { -1 })
            .collect();
        let mut alive = vec![true; n];

        #[derive(PartialEq)]
        struct Bigram {
            score: f32,
            left: usize,
            right: usize,
            len: usize,
        }
        impl Eq for Bigram {}
        impl PartialOrd for Bigram {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Bigram {
            fn cmp(&self, o: &Self) -> Ordering {
                // highest score first; on ties the leftmost
                self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
            }
        }
        let score = |s: &str| -> Option<f32> {
            self.ids
                .get(s)
                .map(|&id| self.vocab.scores.get(id as usize).copied().unwrap_or(0.0))
        };
        let mut heap = BinaryHeap::new();
        let try_push =
            |heap: &mut BinaryHeap<Bigram>, range: &[(usize, usize)], l: usize, r: usize| {
                let s = &norm[range[l].0..range[r].1];
                if let Some(sc) = score(s) {
                    heap.push(Bigram {
                        score: sc,
                        left: l,
                        right: r,
                        len: s.len(),
                    });
                }
            };
        for i in 0..n.saturating_sub(1) {
            try_push(&mut heap, &range, i, i + 1);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (bg.left, bg.right);
            // stale entry: one side already merged away or changed length
            if !alive[l] || !alive[r] || next[l] != r as isize || range[r].1 - range[l].0 != bg.len
            {
                continue;
            }
            range[l].1 = range[r].1;
            alive[r] = false;
            next[l] = next[r];
            if next[r] >= 0 {
                prev[next[r] as usize] = l as isize;
            }
            if prev[l] >= 0 {
                try_push(&mut heap, &range, prev[l] as usize, l);
            }
            if next[l] >= 0 {
                try_push(&mut heap, &range, l, next[l] as usize);
            }
        }
        let mut i = 0isize;
        while i >= 0 {
            let s = &norm[range[i as usize].0..range[i as usize].1];
            match self.ids.get(s) {
                Some(&id) => out.push(id),
                None => {
                    for &b in s.as_bytes() {
                        match byte_tokens[b as usize] {
                            Some(id) => out.push(id),
                            None => out.extend(self.vocab.unk_id),
                        }
                    }
                }
            }
            i = next[i as usize];
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// The chat formats airinfer can write, chosen as llama.cpp does: from the GGUF's
/// `tokenizer.chat_template` (a Jinja template recognised by its markers, not executed), or,
/// when the file has none, from the architecture (Gemma 3 GGUFs often carry no template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` (SmolLM2, Qwen).
    ChatMl,
    /// `<start_of_turn>{user|model}\n{content}<end_of_turn>\n`, a system message folded into
    /// the first user turn (Gemma).
    Gemma,
    /// `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>` (Llama 3).
    Llama3,
}

impl ChatFormat {
    /// The format of a model file: its template's markers, else its architecture's
    /// (`gemma*`: Gemma), else ChatML (llama.cpp's default).
    pub fn of(g: &GgufFile) -> ChatFormat {
        if let Some(t) = g.get_str_opt("tokenizer.chat_template").ok().flatten() {
            if t.contains("<|im_start|>") {
                return ChatFormat::ChatMl;
            }
            if t.contains("<start_of_turn>") {
                return ChatFormat::Gemma;
            }
            if t.contains("<|start_header_id|>") {
                return ChatFormat::Llama3;
            }
        }
        match g.get_str_opt("general.architecture").ok().flatten() {
            Some(a) if a.starts_with("gemma") => ChatFormat::Gemma,
            _ => ChatFormat::ChatMl,
        }
    }

    /// The conversation as the model's prompt text (special tokens as text: tokenise it with
    /// special-token parsing), ending with the assistant's turn opened when
    /// `add_generation_prompt`.
    pub fn apply(self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let mut s = String::new();
        match self {
            ChatFormat::ChatMl => {
                for m in messages {
                    s.push_str(&format!(
                        "<|im_start|>{}\n{}<|im_end|>\n",
                        m.role, m.content
                    ));
                }
                if add_generation_prompt {
                    s.push_str("<|im_start|>assistant\n");
                }
            }
            ChatFormat::Gemma => {
                // no system role: system messages are folded into the next user turn
                let mut system = String::new();
                for m in messages {
                    if m.role == "system" {
                        system.push_str(m.content.trim());
                        continue;
                    }
                    let role = if m.role == "assistant" {
                        "model"
                    } else {
                        &m.role
                    };
                    s.push_str(&format!("<start_of_turn>{role}\n"));
                    if !system.is_empty() && role != "model" {
                        s.push_str(&format!("{}\n\n", std::mem::take(&mut system)));
                    }
                    s.push_str(&format!("{}<end_of_turn>\n", m.content.trim()));
                }
                if add_generation_prompt {
                    s.push_str("<start_of_turn>model\n");
                }
            }
            ChatFormat::Llama3 => {
                for m in messages {
                    s.push_str(&format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        m.content.trim()
                    ));
                }
                if add_generation_prompt {
                    s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
        }
        s
    }
}

/// The ChatML template: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` when a reply is to be generated.
pub fn chatml(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    ChatFormat::ChatMl.apply(messages, add_generation_prompt)
}

/// The default system message a GGUF chat template inserts when the conversation has none
/// (SmolLM2's: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
pub fn default_system_message(g: &GgufFile) -> Option<String> {
    let t = g.get_str_opt("tokenizer.chat_template").ok()??;
    let start = t.find("<|im_start|>system\n")? + "<|im_start|>system\n".len();
    let len = t[start..].find("<|im_end|>")?;
    let msg = &t[start..start + len];
    // only a literal message (no template expressions inside)
    if msg.contains("{{") || msg.contains("{%") {
        return None;
    }
    Some(msg.to_string())
}

#[cfg(test)]
mod tests;
