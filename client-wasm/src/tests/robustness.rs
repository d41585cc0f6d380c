//! Bad input and random concurrent edits: errors, never panics, always convergence.

use super::*;

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Counts panics on this thread, including the ones `catch_unwind` in quire-model hides: in
/// the browser build every one of them would abort the module.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // yrs's `ClientID::new` debug-asserts that an id fits 53 bits; release builds (the
            // browser's included) compile it out, so a huge id in garbage is no abort there.
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if !message.contains("Self::MASK") {
                PANICS.with(|p| p.set(p.get() + 1));
            }
            default(info);
        }));
    });
}

#[test]
fn garbage_is_an_error_and_changes_nothing() {
    count_panics();
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    a.replica.set_state_json(&json!({"user": {"name": "Ann"}}));
    let mut frames = a.replica.start();
    frames.push(a.edit(json!([{"insert": "文档😀", "attributes": {"bold": true}}, {"insert": "\n", "attributes": {"header": 2}}])));
    let first = a.replica.encode_state();
    frames.push(a.edit(json!([{"retain": 1}, {"delete": 1}])));
    frames.push(a.edit(
        json!([{"retain": 3}, {"retain": 1, "attributes": {"header": null}}, {"insert": "!"}]),
    ));
    frames.push(a.replica.set_title("x").unwrap());
    let state = a.replica.encode_state();
    let before = b.replica.encode_state();
    for garbage in [
        &[][..],
        &[0xff],
        &[0, 0],
        &[0, 1, 0xff, 0xff, 0xff],
        &[0, 2, 5, 1, 2, 3],
        &[9, 1, 0],
        &[1, 0x80],
    ] {
        assert!(
            b.replica.receive(garbage).is_err(),
            "{garbage:?} was accepted"
        );
        assert!(b.replica.apply_state(garbage).is_err() || garbage == [0, 0]);
    }
    // Mutated real messages, from a printed, replayable seed.
    let mut next = rng("garbage");
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..3000 {
        let mut frame = frames[next() as usize % frames.len()].clone();
        for _ in 0..1 + next() % 3 {
            let i = next() as usize % frame.len();
            frame[i] = next() as u8;
        }
        if next() & 3 == 0 {
            frame.truncate(next() as usize % frame.len());
        }
        let mut fresh = Peer::new(3);
        // Half the time against a replica that holds the edits the later frames build on.
        if next() & 1 == 0 {
            fresh.replica.apply_state(&first).unwrap();
        }
        match fresh.replica.receive(&frame) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        let _ = fresh.replica.apply_state(&frame);
        let _ = fresh.replica.content_json();
    }
    println!("mutated frames: {refused} refused, {accepted} accepted");
    assert_eq!(
        PANICS.with(Cell::get),
        0,
        "yrs panicked on garbage: the browser module would abort"
    );
    assert_eq!(b.replica.encode_state(), before);
    assert!(b.replica.apply_state(&state).is_ok());

    let too_big = json!({"item": {"client": 1u64 << 60, "clock": 0}});
    assert!(
        b.replica.index_json(&too_big).is_err(),
        "not a JavaScript number: refused, not asserted on"
    );
    assert!(b.replica.index_json(&json!({"item": "x"})).is_err());
    assert!(b.replica.index_json(&json!([1, 2])).is_err());
    assert!(b.replica.index_json(&json!({"bogus": 1})).is_err());
    assert!(b
        .replica
        .apply_quill_delta(&any(&json!([{"delete": -1}])))
        .is_err());
}

/// A tiny seeded generator (xorshift64), so failures replay from the printed seed.
fn rng(name: &str) -> impl FnMut() -> u64 {
    let seed = std::env::var("QUIRE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    println!("{name} seed: QUIRE_SEED={seed}");
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn random_quill_edits_converge_and_never_panic() {
    random_edits(false);
}

/// Found by the test above when positions may fall inside a surrogate pair (Quill never sends
/// those: a caret cannot sit inside a character): with yrs 0.28, a format whose boundary
/// splits a pair leaves U+FFFD on some replicas and the emoji on others, depending on the
/// order updates arrive in. Inserts and deletes at such positions converge.
#[test]
#[ignore = "yrs 0.28 diverges on formats that split a surrogate pair; run with --ignored"]
fn formats_splitting_surrogate_pairs_converge() {
    random_edits(true);
}

/// Three peers make random Quill edits (text with CJK and emoji, formats set and cleared,
/// deletes, retains past the end) and exchange them with delays, so edits are concurrent.
/// Positions are whole characters unless `anywhere`.
fn random_edits(anywhere: bool) {
    count_panics();
    let mut next = rng("random edits");
    let words = ["a", "文", "😀", "👋🏽", " ", "\n", "ab", "两个"];
    let formats = [
        json!({"bold": true}),
        json!({"bold": null}),
        json!({"header": 2}),
        json!({"italic": true}),
        json!({}),
    ];
    let mut peers = [Peer::new(1), Peer::new(2), Peer::new(3)];
    let mut inflight: Vec<(usize, Vec<u8>)> = Vec::new();
    let deliver = |peers: &mut [Peer; 3], inflight: &mut Vec<(usize, Vec<u8>)>| {
        for (from, message) in inflight.drain(..) {
            for (_, peer) in peers.iter_mut().enumerate().filter(|(i, _)| *i != from) {
                if anywhere {
                    // A split character is U+FFFD in the document but not in the editor
                    // model, so only convergence is checked then.
                    peer.replica.receive(&message).unwrap();
                } else {
                    peer.receive(&message);
                }
            }
        }
    };
    for round in 0..300 {
        let who = next() as usize % peers.len();
        let peer = &mut peers[who];
        // UTF-16 offsets of every character boundary (no embeds are inserted here).
        let text: String = peer
            .replica
            .content_json()
            .iter()
            .filter_map(|op| op["insert"].as_str().map(str::to_owned))
            .collect();
        let mut bounds = vec![0u64];
        for ch in text.chars() {
            bounds.push(bounds.last().unwrap() + ch.len_utf16() as u64);
        }
        let len = *bounds.last().unwrap();
        let span = 1 + next() % 5;
        let (at, n) = if anywhere {
            (next() % (len + 1), span)
        } else {
            let i = next() as usize % bounds.len();
            let end = bounds.get(i + span as usize).copied().unwrap_or(len + span);
            (bounds[i], end - bounds[i])
        };
        let attrs = formats[next() as usize % formats.len()].clone();
        let ops = match next() % 4 {
            0 => json!([{"retain": at}, {"delete": n}]),
            1 => json!([{"retain": at}, {"retain": n, "attributes": attrs}]),
            _ => {
                let word = words[next() as usize % words.len()];
                json!([{"retain": at}, {"insert": word, "attributes": attrs}])
            }
        };
        if let Some(message) = peer.replica.apply_quill_delta(&any(&ops)).unwrap() {
            // These deltas may run past the end, where the model lacks Quill's own final
            // newline: resync it after local edits; remote changes are checked against it.
            peer.quill = Quill::of(&peer.replica.content_json());
            inflight.push((who, message));
        }
        if round % 3 == 0 || next() & 1 == 0 {
            deliver(&mut peers, &mut inflight);
        }
    }
    deliver(&mut peers, &mut inflight);
    let content = peers[0].replica.content_json();
    for peer in &peers[1..] {
        assert_eq!(peer.replica.content_json(), content, "replicas diverged");
    }
    assert_eq!(
        PANICS.with(Cell::get),
        0,
        "yrs panicked on a Quill edit: the browser module would abort"
    );
}
