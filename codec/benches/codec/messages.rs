//! The message cases: each message's body, decoded and encoded by ours and by
//! `wow_world_messages`.

use super::*;

/// One message in both codecs, and the body bytes both decode.
pub(crate) struct Pair<M, W> {
    name: &'static str,
    ours: M,
    theirs: W,
    body: Vec<u8>,
}

impl<M, W> Pair<M, W>
where
    M: Message + PartialEq + std::fmt::Debug,
    W: wow_world_messages::Message + PartialEq + std::fmt::Debug,
{
    /// Checks that both codecs agree on the bytes before anything is timed.
    fn new(name: &'static str, ours: M, theirs: W) -> Self {
        let body = ours.to_body();
        let mut crate_body = Vec::new();
        theirs
            .write_into_vec(&mut crate_body)
            .expect("crate writes");
        assert!(
            body.starts_with(&crate_body),
            "{name}: our body is not the crate's (plus an AzerothCore tail)"
        );
        let pair = Pair {
            name,
            ours,
            theirs,
            body,
        };
        assert_eq!(pair.decode_ours(), pair.ours, "{name}: ours round trip");
        assert_eq!(
            pair.decode_theirs(),
            pair.theirs,
            "{name}: crate reads our bytes"
        );
        pair
    }

    fn decode_ours(&self) -> M {
        M::decode(black_box(&self.body)).expect("ours decodes")
    }

    fn decode_theirs(&self) -> W {
        let mut body: &[u8] = black_box(&self.body);
        W::read_body::<W>(&mut body, self.body.len() as u32).expect("crate decodes")
    }

    fn encode_ours(&self) -> Vec<u8> {
        black_box(&self.ours).to_body()
    }

    fn encode_theirs(&self) -> Vec<u8> {
        let mut out = Vec::new();
        black_box(&self.theirs)
            .write_into_vec(&mut out)
            .expect("crate writes");
        out
    }
}

/// What the benchmarks and the table need of any pair.
pub(crate) trait Bench {
    fn name(&self) -> &'static str;
    fn body_len(&self) -> usize;
    fn criterion(&self, c: &mut Criterion);
    /// Messages per second: (ours decode, theirs decode, ours encode, theirs encode).
    fn rates(&self, cell: Duration) -> [f64; 4];
}

impl<M, W> Bench for Pair<M, W>
where
    M: Message + PartialEq + std::fmt::Debug,
    W: wow_world_messages::Message + PartialEq + std::fmt::Debug,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn body_len(&self) -> usize {
        self.body.len()
    }

    fn criterion(&self, c: &mut Criterion) {
        let mut group = c.benchmark_group(format!("messages/{}", self.name));
        group.throughput(Throughput::Elements(1));
        group.bench_function("decode ours", |b| b.iter(|| self.decode_ours()));
        group.bench_function("decode wow_world_messages", |b| {
            b.iter(|| self.decode_theirs())
        });
        group.bench_function("encode ours", |b| b.iter(|| self.encode_ours()));
        group.bench_function("encode wow_world_messages", |b| {
            b.iter(|| self.encode_theirs())
        });
        group.finish();
    }

    /// The best of [`ROUNDS`] short windows for each, the four taking turns, so a
    /// burst of load on a busy machine lowers one window rather than one side.
    fn rates(&self, cell: Duration) -> [f64; 4] {
        let window = cell / ROUNDS;
        let mut best = [0f64; 4];
        for _ in 0..ROUNDS {
            let round = [
                rate(window, 1000, || drop(black_box(self.decode_ours()))),
                rate(window, 1000, || drop(black_box(self.decode_theirs()))),
                rate(window, 1000, || drop(black_box(self.encode_ours()))),
                rate(window, 1000, || drop(black_box(self.encode_theirs()))),
            ];
            for (best, now) in best.iter_mut().zip(round) {
                *best = best.max(now);
            }
        }
        best
    }
}

/// Windows per table cell; the table keeps each side's best.
const ROUNDS: u32 = 5;

/// Calls per second of `f`, in a timed loop of about `cell` (batches of `batch`).
pub(crate) fn rate(cell: Duration, batch: u64, mut f: impl FnMut()) -> f64 {
    // Warm up briefly, then run batches until the cell's time is used.
    for _ in 0..batch {
        f();
    }
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < cell {
        for _ in 0..batch {
            f();
        }
        calls += batch;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

pub(crate) fn wg(guid: Guid) -> WowGuid {
    WowGuid::new(guid.0)
}

/// The messages compared, as they travel in a charter flow.
pub(crate) fn pairs() -> Vec<Box<dyn Bench>> {
    let charter = Guid::item(0x0042_1337);
    let owner = Guid::player(1201);
    let signer = Guid::player(88_321);
    let signatures: Vec<Guid> = (0..9).map(|k| Guid::player(70_000 + k * 7)).collect();
    let ranks: [String; 10] = std::array::from_fn(|i| match i {
        0 => "Guild Master".to_owned(),
        1 => "Officer".to_owned(),
        2 => "Veteran".to_owned(),
        3 => "Member".to_owned(),
        4 => "Initiate".to_owned(),
        _ => String::new(),
    });
    vec![
        Box::new(Pair::new(
            "SMSG_PETITION_SHOW_SIGNATURES (9 signatures)",
            SmsgPetitionShowSignatures {
                petition: charter,
                owner,
                petition_id: 0x0042_1337,
                signatures: signatures
                    .iter()
                    .map(|&player| PetitionSignature { player, unk: 0 })
                    .collect(),
            },
            w::SMSG_PETITION_SHOW_SIGNATURES {
                item: wg(charter),
                owner: wg(owner),
                petition: 0x0042_1337,
                signatures: signatures
                    .iter()
                    .map(|&player| w::PetitionSignature {
                        signer: wg(player),
                        unknown1: 0,
                    })
                    .collect(),
            },
        )),
        Box::new(Pair::new(
            "CMSG_PETITION_SIGN",
            CmsgPetitionSign {
                petition: charter,
                unk: 1,
            },
            w::CMSG_PETITION_SIGN {
                petition: wg(charter),
                unknown1: 1,
            },
        )),
        Box::new(Pair::new(
            "SMSG_PETITION_SIGN_RESULTS",
            SmsgPetitionSignResults {
                petition: charter,
                signer,
                result: 0,
            },
            w::SMSG_PETITION_SIGN_RESULTS {
                petition: wg(charter),
                owner: wg(signer),
                result: w::PetitionResult::Ok,
            },
        )),
        Box::new(Pair::new(
            "CMSG_OFFER_PETITION",
            CmsgOfferPetition {
                unk: 0,
                petition: charter,
                target: signer,
            },
            w::CMSG_OFFER_PETITION {
                unknown0: 0,
                petition: wg(charter),
                target: wg(signer),
            },
        )),
        Box::new(Pair::new(
            "SMSG_PETITION_QUERY_RESPONSE",
            SmsgPetitionQueryResponse {
                petition_id: 0x0042_1337,
                owner,
                name: "Ironforge Defenders".to_owned(),
                body_text: String::new(),
                min_signatures: 9,
                max_signatures: 9,
                unk_type: 0,
                unk1: [0; 4],
                unk2: 0,
                unk3: [0; 3],
                unk_strings: [0; 10],
                unk4: 0,
                is_arena: 0,
            },
            w::SMSG_PETITION_QUERY_RESPONSE {
                petition_id: 0x0042_1337,
                charter_owner: wg(owner),
                guild_name: "Ironforge Defenders".to_owned(),
                minimum_signatures: 9,
                maximum_signatures: 9,
                charter_type: w::CharterType::Guild,
                ..Default::default()
            },
        )),
        Box::new(Pair::new(
            "SMSG_GUILD_QUERY_RESPONSE (5 ranks)",
            SmsgGuildQueryResponse {
                guild_id: 77,
                name: "Ironforge Defenders".to_owned(),
                rank_names: ranks.clone(),
                emblem: GuildEmblem {
                    emblem_style: 101,
                    emblem_color: 3,
                    border_style: 2,
                    border_color: 14,
                    background_color: 40,
                },
                rank_count: 5,
            },
            w::SMSG_GUILD_QUERY_RESPONSE {
                id: 77,
                name: "Ironforge Defenders".to_owned(),
                rank_names: ranks,
                emblem_style: 101,
                emblem_color: 3,
                border_style: 2,
                border_color: 14,
                background_color: 40,
            },
        )),
        Box::new(Pair::new(
            "SMSG_GUILD_COMMAND_RESULT",
            // AzerothCore GUILD_COMMAND_CREATE (0), ERR_GUILD_NAME_EXISTS_S (7): the
            // crate numbers both the same.
            SmsgGuildCommandResult {
                command: tc9_codec::messages::GuildCommand::Create,
                name: "Ironforge Defenders".to_owned(),
                error: tc9_codec::messages::GuildCommandError::NameExistsS,
            },
            w::SMSG_GUILD_COMMAND_RESULT {
                command: w::GuildCommand::Create,
                string: "Ironforge Defenders".to_owned(),
                result: w::GuildCommandResult::GuildNameExistsS,
            },
        )),
    ]
}
