use super::*;

/// A tiny byte-level BPE vocabulary: all 256 byte characters plus a few merges.
fn tiny_bpe() -> Tokenizer {
    let chars = gpt2_byte_chars();
    let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    let g = chars[b' ' as usize];
    let merges = vec![
        format!("{g} t"),
        "h e".to_string(),
        format!("{g}t he"),
        "1 2".to_string(),
    ];
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    tokens.push("<|im_end|>".into());
    let mut types = vec![token_type::NORMAL; tokens.len()];
    *types.last_mut().unwrap() = token_type::CONTROL;
    let eos = (tokens.len() - 1) as u32;
    Tokenizer::from_vocab(TokenizerVocab {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        token_types: types,
        merges,
        eos_id: Some(eos),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn bpe_merges_by_rank_and_splits_digits() {
    let t = tiny_bpe();
    let ids = t.encode(" the", false, false);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        t.token_text(ids[0]).unwrap(),
        format!("{}the", gpt2_byte_chars()[32])
    );
    // smollm splits every digit: "12" must not merge even though "1 2" is a merge
    let ids = t.encode("12", false, false);
    assert_eq!(ids.len(), 2);
    // special tokens only when asked
    let eos = t.eos_id().unwrap();
    assert_eq!(t.encode("a<|im_end|>", false, true).last(), Some(&eos));
    assert!(!t.encode("a<|im_end|>", false, false).contains(&eos));
    assert!(t.is_eog(eos));
}

#[test]
fn bpe_roundtrips_arbitrary_text() {
    let t = tiny_bpe();
    for s in [
        "",
        "hello world",
        "  leading\n\n\ttabs  ",
        "ünïcödé 漢字 🎉🎉",
        "don't I'll 3.14159",
        "<|im_end|>",
        "\r\n\u{0}\u{7f}",
    ] {
        assert_eq!(t.decode(&t.encode(s, false, false)), s);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, .. Default::default() })]
    /// decode(encode(text)) == text for any UTF-8 text (byte-level BPE covers every byte).
    #[test]
    fn bpe_roundtrips_any_utf8(text in "\\PC*", spaces in 0usize..40, digits in "[0-9]{0,30}") {
        let t = tiny_bpe();
        for s in [text.clone(), format!("{}{}{}", " ".repeat(spaces), digits, text)] {
            proptest::prop_assert_eq!(t.decode(&t.encode(&s, false, false)), s);
        }
    }
}

fn tiny_spm() -> Tokenizer {
    // ▁ = U+2581
    let toks = [
        "<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "c",
    ];
    let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, -1.0, -0.5, -3.0];
    let mut tokens: Vec<String> = toks.iter().map(|s| s.to_string()).collect();
    let mut types = vec![
        token_type::UNKNOWN,
        token_type::CONTROL,
        token_type::CONTROL,
    ];
    types.extend(std::iter::repeat_n(token_type::NORMAL, toks.len() - 3));
    let mut sc: Vec<f32> = scores.to_vec();
    for b in 0..256 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(token_type::BYTE);
        sc.push(-10.0);
    }
    Tokenizer::from_vocab(TokenizerVocab {
        model: "llama".into(),
        tokens,
        token_types: types,
        scores: sc,
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        add_bos: true,
        add_space_prefix: true,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn spm_merges_by_score_with_byte_fallback() {
    let t = tiny_spm();
    // "ab" → "▁ab": pairs (▁,a) score −1.5 and (a,b) −1.0: "ab" first, then "▁ab" (−0.5)
    assert_eq!(t.encode("ab", true, false), vec![1, 8]);
    // "c" has a token; "é" falls back to its two UTF-8 bytes
    let ids = t.encode("é", false, false);
    assert_eq!(ids, vec![3, 10 + 0xC3, 10 + 0xA9]);
    assert_eq!(t.decode(&t.encode("ab c é", true, false)), "ab c é");
}

/// The chat formats write what llama.cpp's built-in templates write for its test conversation
/// (`tests/test-chat-template.cpp`, llama.cpp vendored in llama-cpp-python 0.3.36: the
/// `expected_output` of google/gemma-7b-it, Llama 3, ChatML).
#[test]
fn chat_formats_match_llama_cpp() {
    let m = |role: &str, content: &str| ChatMessage {
        role: role.into(),
        content: content.into(),
    };
    let conversation = [
        m("system", "You are a helpful assistant"),
        m("user", "Hello"),
        m("assistant", "Hi there"),
        m("user", "Who are you"),
        m("assistant", "   I am an assistant   "),
        m("user", "Another question"),
    ];
    assert_eq!(
        ChatFormat::Gemma.apply(&conversation, true),
        "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        ChatFormat::Llama3.apply(&conversation, true),
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        ChatFormat::ChatMl.apply(&conversation, true),
        "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n"
    );
}
