"""The one typed settings tree.

Every field reads from the environment with the ``RISKSTREAM_`` prefix; nested groups use ``__``
(``RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS``). Defaults run embedded: a local broker, SQLite, the
rule scorer. Settings are frozen so a running worker cannot drift from what it logged at start.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskstream.llm.assessment import ANSWER_MAX_TOKENS
from riskstream.package_data import TOPIC_SPECS

REPO_ROOT = Path(__file__).resolve().parent.parent


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(_Group):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated host:port list of the Kafka-protocol brokers.",
    )
    security_protocol: SecurityProtocol = Field(
        SecurityProtocol.PLAINTEXT, description="How clients talk to the brokers."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when security_protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certs.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key for mutual TLS.")
    fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        description=(
            "Longest the broker may hold a fetch when no data is ready: bounds the latency an"
            " idle partition adds to every event."
        ),
    )
    session_timeout_s: float = Field(
        10.0,
        description="Consumer-group session timeout: a dead worker's partitions move after this.",
    )


class TopicNames(_Group):
    market_data: str = Field("market-data", description="Quotes and prints, key = symbol.")
    trade_logs: str = Field("trade-logs", description="Order life-cycle events, key = account.")
    risk_alerts: str = Field("risk-alerts", description="Scored alerts, key = account or symbol.")
    dead_letter: str = Field("dead-letter", description="Undecodable or invalid input.")
    linked_fills: str = Field(
        "linked-fills",
        description="Lit-book fills of owner-linked accounts, key = beneficial owner; every worker "
        "reads all of it to pair the legs of washes between accounts other workers own.",
    )
    specs_dir: Path = Field(
        TOPIC_SPECS,
        description="Folder of declarative topic specs (*.toml); the package ships riskstream/topic_specs.",
    )
    partitions: int | None = Field(
        None,
        ge=1,
        description=(
            "Partitions of every topic, instead of the specs' counts (unset: the specs'). The"
            " embedded stack (`riskstream demo`, bench/soak.py) sets 1: it runs one worker, and"
            " each partition costs Tansu a listing of its stored batches on every fetch."
        ),
    )


class DatabaseSettings(_Group):
    url: SecretStr = Field(
        SecretStr("sqlite+aiosqlite:///riskstream.db"),
        description=(
            "SQLAlchemy async URL of the audit database: postgresql+asyncpg://... in production,"
            " SQLite (aiosqlite) embedded. Secret because it may hold a password."
        ),
    )
    pool_size: int = Field(5, ge=1, description="Connections kept open to a server database.")
    flush_interval_ms: int = Field(
        200,
        ge=1,
        description=(
            "How often pending audit rows are written in one batch; every checkpoint also"
            " waits for them before committing offsets."
        ),
    )
    statement_timeout_s: float = Field(
        5.0,
        gt=0,
        description=(
            "Longest any one database call (connect, statement, pool checkout) may take: a"
            " server that accepts connections and then stalls fails the call, which is retried,"
            " instead of hanging the checkpoint."
        ),
    )
    retry_max_s: float = Field(
        5.0,
        gt=0,
        description=(
            "Longest pause between retries of a failed audit write (exponential backoff from"
            " 50 ms). Every failure is logged with its reason; offsets stay uncommitted meanwhile."
        ),
    )


class StreamSettings(_Group):
    batch_max_events: int = Field(
        1000, ge=1, description="Most events an agent takes per micro-batch (Stream.take)."
    )
    batch_within_ms: int = Field(
        5,
        ge=1,
        description=("Longest an agent waits to fill a micro-batch. Bounds the latency added by batching."),
    )
    checkpoint_interval_ms: int = Field(
        1000,
        ge=10,
        description=(
            "How often dirty state is written to its changelog and offsets are committed."
            " Longer means fewer state writes and more replay after a crash."
        ),
    )
    checkpoint_slice_ms: float = Field(
        5.0,
        gt=0,
        description=(
            "Longest the fold is paused for one slice of a checkpoint's state work: dirty states"
            " are serialized in such slices ahead of the cut, and their stored records built and"
            " sent in such slices after it, with the fold going on between them, so that the cut"
            " itself waits only for what changed since the last slice."
        ),
    )
    gc_young_objects: int = Field(
        50_000,
        ge=700,
        description=(
            "Net allocations between two young garbage-collector passes (CPython's default is"
            " 700). Events, records and futures live for one micro-batch; at 700 many of them"
            " survive into the old generations, and each generation-2 pass then walks the whole"
            " state (riskstream_gc_pause_seconds). A larger value lets them die young."
        ),
    )
    lag_poll_s: float = Field(
        2.0,
        gt=0,
        description=(
            "How often consumer lag is measured (end offsets asked of the broker) and the stall checks run."
        ),
    )
    reread_after_s: float = Field(
        5.0,
        gt=0,
        description=(
            "A partition whose reader saw records past the offset the fold expects next, none"
            " of which reached the fold for this long while it was not held, is read again from"
            " that offset (records dropped between the client and the fold at a rebalance or a"
            ' seek; riskstream_offset_gaps_total{outcome="stalled"}). A record that was only'
            " slow then comes twice, and the second copy is passed over."
        ),
    )
    stall_after_s: float = Field(
        30.0,
        gt=0,
        description=(
            "A partition with records waiting that makes no progress for this long is stalled:"
            " readiness turns false and riskstream_stalled_partitions counts it."
        ),
    )
    stall_exit_s: float = Field(
        120.0,
        gt=0,
        description=(
            "A stall this long makes the worker exit non-zero, so its supervisor restarts it (a"
            " restart clears a consumer stuck in the client); so does a broker that lost its log."
        ),
    )
    liveness_timeout_s: float = Field(
        60.0,
        gt=0,
        description=(
            "/healthz fails when the event loop has not run for this long or a checkpoint has"
            " been running this long (a hung call), so a liveness probe restarts the worker."
        ),
    )
    max_event_time_skew_ms: int = Field(
        500,
        gt=0,
        description=(
            "Events are folded in one event-time order across the input partitions (the"
            " backtest's order). A partition whose events run this far (event time) ahead of the"
            " earliest event waiting is paused until the others catch up, so that what waits in"
            " memory stays bounded."
        ),
    )
    allowed_lateness_ms: int = Field(
        250,
        ge=0,
        description=(
            "An event waits until every input partition has passed its event time. A partition"
            " read to the broker's end is stopped being waited for after this long (wall time):"
            " the most live traffic waits on a quiet partition. A record that reaches the broker"
            " later than this behind records of other partitions with later event times is"
            " folded out of order and counted in riskstream_out_of_order_events_total."
        ),
    )
    max_event_lead_s: float = Field(
        60.0,
        ge=0,
        description=(
            "Plausible event time, ahead side: an input event dated more than this after the"
            " worker's wall clock is dead-lettered (clock skew between venues and the worker is"
            " milliseconds). A future-dated quote would otherwise become its symbol's market and"
            " a future-dated order would move its account's window watermark."
        ),
    )
    max_event_age_s: float = Field(
        10 * 365 * 86_400.0,
        ge=0,
        description=(
            "Plausible event time, behind side: an input event dated more than this before the"
            " worker's wall clock is dead-lettered. Ten years covers replays of any retained"
            " history (MiFID II keeps records five to seven); 0 turns the bound off."
        ),
    )
    account_idle_ttl_s: float = Field(
        1800.0,
        gt=0,
        description=(
            "An account with no order event for this long (event time) is held as its stored"
            " state only (in stream.state_dir's file, not in memory), and decoded again at its"
            " next event or when a quote crosses one"
            " of its positions' loss-limit re-mark triggers: the same state, so the same alerts"
            " (worker and backtest alike), while memory follows the accounts active at once."
            " Nothing is dropped: positions, usual sizes and open breaches outlive it. The"
            " default is the longest detector look-back (detectors.ramp_max_duration_s), so an"
            " account inside an episode stays decoded."
        ),
    )
    state_dir: Path | None = Field(
        None,
        description=(
            "Directory of the local files that hold the account-state table's stored records"
            " (an append-only log per worker process, compacted as it goes, with an index of"
            " about 100 bytes per account in memory), so that the worker's memory holds only the"
            " accounts it is folding, decoded, and no second copy of any state. The files are a"
            " cache of the state changelog: emptied at each start, refilled from the changelog,"
            " removed at stop (a killed worker's by the next start); they need no backup and no"
            " persistent volume, and take up to about three times the stored states' size."
            " Faust's own data directory (empty: its tables live in memory) goes here too, as"
            " `<app_id>-faust`. Unset: the system's temporary directory."
        ),
    )
    max_state_record_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1_048_576,
        description=(
            "Largest checkpointed state of one account or symbol: the producer's max request size"
            " and the state changelog topics' max.message.bytes. An account at"
            " windows.max_events_per_account with long ids takes a few MB; a larger state is not"
            " checkpointed and counts in riskstream_state_oversize_total."
        ),
    )


class WindowSettings(_Group):
    activity_window_s: float = Field(
        20.0,
        gt=0,
        description=(
            "Event-time span of per-account order activity kept for the detectors. At least twice "
            "detectors.spoof_cancel_within_s (the longest look-back); more only costs state."
        ),
    )
    grace_s: float = Field(
        5.0,
        ge=0,
        description="How late an event may arrive (event time) and still enter its window.",
    )
    max_events_per_account: int = Field(
        5000, ge=10, description="Cap on retained events per account: bounds state size."
    )
    size_ewma_alpha: float = Field(
        0.05, gt=0, le=1, description="Weight of a new order in the account's usual-size average."
    )


class DetectorSettings(_Group):
    fat_finger_price_band: float = Field(
        0.05,
        gt=0,
        description=(
            "A limit that would trade more than this fraction of the price through the opposite"
            " touch (a buy above the ask, a sell below the bid) is a fat-finger price, as exchange"
            " price collars judge it; a resting order far from the market is not."
        ),
    )
    fat_finger_size_multiple: float = Field(
        8.0,
        gt=1,
        description=(
            "Order size this many times the account's usual size in that symbol (its running"
            " median) is suspect: one extra zero is 10x, less the ordinary spread of the"
            " account's sizes."
        ),
    )
    fat_finger_peak_multiple: float = Field(
        3.0,
        gt=1,
        description=(
            "A size outlier must also be this many times the account's recent largest order there: a"
            " desk that sends blocks among small orders is not fat-fingering the next block."
        ),
    )
    fat_finger_own_sigmas: float = Field(
        4.0,
        gt=0,
        description=(
            "A size outlier must also be this many sigmas of the account's own log order sizes"
            " in that symbol above its usual size: log-normal sizes reach 4 sigmas on about one"
            " order in 30 000. An account whose sizes spread over a decade (retail) reaches 10x"
            " its median by itself; one that always sends the same lot does not."
        ),
    )
    fat_finger_min_history: int = Field(
        10,
        ge=1,
        description=(
            "Orders an account needs in a symbol before its usual size there is trusted; before"
            " that, size is judged against the symbol's displayed depth."
        ),
    )
    fat_finger_depth_multiple: float = Field(
        15.0,
        gt=1,
        description=(
            "For an account new to the symbol: an order this many times the symbol's typical"
            " displayed size at the touch is outsized (it would sweep that many books)."
        ),
    )
    spoof_cancel_within_s: float = Field(
        5.0, gt=0, description="A large order cancelled within this lifetime counts as spoof-like."
    )
    spoof_min_cancelled_orders: int = Field(
        1,
        ge=1,
        description=(
            "Cancelled large orders on one side needed to call spoofing (one suffices: each"
            " must be spoof_min_touch_multiple touches large and short-lived)."
        ),
    )
    spoof_max_far_fill_share: float = Field(
        0.2,
        ge=0,
        description=(
            "Fills of the cancelled orders themselves up to this share of their size do not"
            " clear the pattern: the market took a sliver of them. A fill of any other order on"
            " that side does (the account trades both sides: it makes a market)."
        ),
    )
    spoof_min_touch_multiple: float = Field(
        2.0,
        gt=0,
        description=(
            "A spoof order must be at least this many times the displayed size at the touch on"
            " its side (twice the account's usual size when no quote is known): big enough to"
            " move the visible book."
        ),
    )
    spoof_volume_ratio: float = Field(
        3.0,
        gt=0,
        description="Cancelled volume on the far side over filled volume on the near side.",
    )
    layering_min_levels: int = Field(
        3, ge=2, description="Distinct price levels of cancelled orders that make it layering."
    )
    wash_match_window_s: float = Field(
        0.01,
        gt=0,
        description=(
            "Opposite fills of one account this close in time form a wash pair: the two reports"
            " of one match come within milliseconds; a scratch trade tens of milliseconds later is"
            " a second execution against someone else."
        ),
    )
    wash_price_tolerance: float = Field(
        1e-6,
        ge=0,
        description=(
            "Relative price difference under which two fills match; a market maker's round"
            " trip across the spread differs by a tick and must not match."
        ),
    )
    ignition_burst_s: float = Field(
        2.0, gt=0, description="Aggressive orders on one side this close together form one burst."
    )
    ignition_min_orders: int = Field(
        3, ge=1, description="Aggressive orders a momentum-ignition burst needs at least."
    )
    ignition_min_touch_multiple: float = Field(
        2.0,
        gt=0,
        description=(
            "Burst quantity over the displayed size at the opposite touch when it began: enough"
            " to take out the visible liquidity."
        ),
    )
    ignition_min_move_spreads: float = Field(
        3.0,
        gt=0,
        description=(
            "Mid move since the burst began, in quoted spreads at its start, that calls ignition"
            " (or ignition_min_move_sigmas, whichever is less; never under one spread)."
        ),
    )
    ignition_min_move_sigmas: float = Field(
        2.0,
        gt=0,
        description=(
            "Or the same move in the symbol's own sigmas over the time from the burst to the"
            " reversal: a one-tick name's push shows in spreads, a wide-spread name's in sigmas."
        ),
    )
    ignition_reversal_s: float = Field(
        10.0,
        gt=0,
        description="The account trades the other way within this after the burst: it cashes in.",
    )
    ramp_max_duration_s: float = Field(
        1800.0, gt=0, description="Longest build-push-sell episode the ramping detector follows."
    )
    ramp_min_participation: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Account's share of the symbol's market volume while it built the position.",
    )
    ramp_min_move_sigmas: float = Field(
        1.0,
        gt=0,
        description=(
            "Price move in the position's favour from first buy to the peak position, in the"
            " symbol's own volatility over that time (sigma x sqrt(T), volatility from before the"
            " push): more than noise ordinarily gives in that time. The campaign (ramp_min_build_fills"
            " at ramp_min_participation of the tape) and the unwind carry the rest: SEC"
            " pump-and-dump cases include pushes of one or two percent on thin names, within their"
            " minutes' noise."
        ),
    )
    ramp_min_move_spreads: float = Field(
        1.0,
        gt=0,
        description=(
            "The same move must also be at least this many quoted spreads: a round trip that does"
            " not earn back the spread it paid gains nothing from the push."
        ),
    )
    ramp_min_build_fills: int = Field(
        10,
        ge=1,
        description=(
            "Fills that build the position at least: a ramp is a campaign of buys worked through"
            " the minutes of the build (dozens to hundreds in the SEC cases), not a hedger's or a"
            " desk's handful of lots that happened to be a large share of a thin tape."
        ),
    )
    ramp_min_build_s: float = Field(
        30.0,
        ge=0,
        description="Event time from first fill to the peak at least: minutes, not an ignition's seconds.",
    )
    ramp_min_unwind_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of the peak position sold back that completes a ramp."
    )
    close_local_time: str = Field(
        "16:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Session close, local time of close_timezone (HH:MM), weekdays.",
    )
    close_timezone: str = Field("America/New_York", description="IANA time zone of the session close.")
    close_window_s: float = Field(
        300.0, gt=0, description="The last minutes before the close that marking-the-close watches."
    )
    close_judge_s: float = Field(
        120.0,
        gt=0,
        description=(
            "Marking the close is judged only on events this close to the close: the price the"
            " close is marked at, not a move minutes before that the market may still undo."
        ),
    )
    close_min_participation: float = Field(
        0.2,
        gt=0,
        description=(
            "Account's net aggressive quantity (its aggressive orders one way less those the"
            " other way in the watched window) over the market volume since the first of them."
        ),
    )
    close_min_move_spreads: float = Field(
        3.0, gt=0, description="Mid move in the orders' direction since the window opened, in spreads."
    )
    close_min_move_sigmas: float = Field(
        1.0,
        gt=0,
        description=(
            "The same move in the symbol's own sigmas (from before the window) over the time since"
            " the first of the orders: the one-sided flow must show in the closing price beyond"
            " the noise of that time. The concentration (close_judge_s, net"
            " close_min_participation, close_min_orders) carries the rest."
        ),
    )
    close_min_orders: int = Field(3, ge=1, description="Aggressive orders in the window at least.")
    stuffing_window_s: float = Field(
        1.0, gt=0, description="Span over which an account's order messages per symbol are counted."
    )
    stuffing_min_messages: int = Field(
        50, ge=1, description="Order messages (new, replace, cancel) in the span at least."
    )
    stuffing_rate_multiple: float = Field(
        4.0,
        gt=0,
        description=(
            "The account's message rate over the symbol's normal quote-update rate: stuffing"
            " floods the book far beyond what the market itself updates."
        ),
    )
    stuffing_own_rate_multiple: float = Field(
        5.0,
        gt=0,
        description=(
            "The account's message rate in the span over its own pace in that symbol before it"
            " (time constant shock_baseline_s): a market maker re-quoting two or three times"
            " faster in a volatile minute is not stuffing."
        ),
    )
    stuffing_min_order_to_trade: float = Field(
        20.0, gt=0, description="Orders per fill over the activity window (fills + 1 when none)."
    )
    shock_fast_s: float = Field(5.0, gt=0, description="Time constant of the short-horizon market features.")
    shock_baseline_s: float = Field(
        300.0, gt=0, description="Time constant of the baseline the short horizon is compared with."
    )
    shock_warmup_s: float = Field(
        60.0, ge=0, description="Market data a symbol needs before its baseline is trusted."
    )
    shock_volatility_multiple: float = Field(
        3.0, gt=1, description="Short-horizon volatility over the baseline volatility."
    )
    shock_spread_multiple: float = Field(
        5.0, gt=1, description="Quoted spread over the baseline average spread."
    )
    shock_volume_multiple: float = Field(
        6.0, gt=1, description="Short-horizon traded volume rate over the baseline rate."
    )
    shock_gap_sigmas: float = Field(
        15.0,
        gt=0,
        description=(
            "A move of the sampled mid over the last one to two seconds this many of the"
            " symbol's own sigmas (sampled a second apart, over max(1 s, elapsed), from before"
            " the move) is a gap. One account's aggressive burst moves a name up to about 12"
            " sigmas in a second or two (bench/README.md): a market shock is beyond that."
        ),
    )
    shock_gap_min_spreads: float = Field(
        1.0,
        ge=0,
        description=(
            "A gap must also span this many of the symbol's usual quoted spreads: a move"
            " inside the spread is bid-ask noise on a thin name, however many sigmas it is."
        ),
    )
    off_book_venues: list[str] = Field(
        ["XOFF"],
        description=(
            "Venues (MIC) whose prints are reported from off book (blocks, dark pools): left out"
            " of an account's share of the lit tape and of the volume rate a shock is seen in."
        ),
    )
    close_auction_s: float = Field(
        60.0,
        ge=0,
        description=(
            "Prints from the close to this long after it are the closing auction's: no shock in volume."
        ),
    )


class LimitDefaults(_Group):
    max_position_qty: float = Field(
        1_000_000, gt=0, description="Default net position limit per account and symbol (units)."
    )
    max_gross_notional: float = Field(
        50_000_000, gt=0, description="Default gross exposure limit per account (price x qty)."
    )
    max_order_qty: float = Field(
        500_000, gt=0, description="Default largest single order an account may send."
    )
    max_loss: float = Field(
        2_000_000,
        gt=0,
        description="Default largest loss per account, realised plus marked to market (currency).",
    )


class VllmSettings(_Group):
    """The embedded engine (``scorer.kind=vllm``): vLLM's AsyncLLM in the worker process."""

    model_path: Path | None = Field(
        None,
        description=(
            "Local directory of the model (Hugging Face layout). Nothing is fetched from a hub."
            " Required for scorer.kind=vllm; e.g. an AWQ Llama-3-8B-Instruct checkpoint."
        ),
    )
    quantization: Literal["auto", "awq", "gptq", "fp8", "compressed-tensors"] = Field(
        "auto",
        description=(
            "Weight quantization. auto = what the checkpoint's config.json declares (fp16/bf16"
            " when none; riskstream quantize output is compressed-tensors W4A16); awq/gptq = 4-bit"
            " AutoAWQ/GPTQ checkpoints; fp8 = 8-bit weights (also quantizes a bf16 checkpoint on"
            " load)."
        ),
    )
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="Activation dtype; auto follows the checkpoint (float16 for AWQ on GPU)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs each layer is split over.")
    pipeline_parallel_size: int = Field(1, ge=1, description="GPUs the layers are staged over.")
    max_num_seqs: int = Field(64, ge=1, description="Most sequences the engine batches at once.")
    max_model_len: int = Field(2048, ge=128, description="Context length: prompt plus answer, in tokens.")
    gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="Share of GPU memory vLLM may take for weights and KV cache."
    )
    kv_cache_memory_bytes: int | None = Field(
        None,
        ge=1,
        description="Fixed KV-cache size instead of a share of memory (the CPU backend's sizing).",
    )
    enable_prefix_caching: bool = Field(
        True, description="Reuse the KV cache of the shared system prompt across requests."
    )
    attention_backend: str | None = Field(
        None,
        description=(
            "vLLM attention backend, e.g. FLASH_ATTN (FlashAttention) on GPU; unset lets vLLM"
            " choose (CPU_ATTN on CPU)."
        ),
    )
    enforce_eager: bool = Field(
        False, description="Skip CUDA graph capture: faster start, slower decode. Tests use it."
    )
    engine_nice: int = Field(
        10,
        ge=0,
        le=19,
        description=(
            "Scheduling niceness of the engine's processes (0: the worker's own). Where they share"
            " CPU cores with the worker (the CPU backend; a GPU host's busy CPUs), the fold and the"
            " rule-scored alerts come first and the model takes the cores' spare time."
        ),
    )


class OpenAISettings(_Group):
    """A remote OpenAI-compatible server (``scorer.kind=openai``): vllm serve, llama.cpp's server."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="Server URL up to and including /v1.")
    model: str = Field("riskstream", description="Model name the server knows the model by.")
    api_key: SecretStr | None = Field(None, description="Bearer token, if the server wants one.")
    max_retries: int = Field(
        2, ge=0, description="Retries of a failed request (connection error, 429, 5xx) within its deadline."
    )
    backoff_ms: int = Field(50, ge=1, description="First retry delay; doubles on each retry.")


class ScorerSettings(_Group):
    kind: Literal["rules", "vllm", "openai"] = Field(
        "rules",
        description=(
            "Which Scorer turns candidates into assessments: rules only, the embedded vLLM engine,"
            " or an OpenAI-compatible server. The LLM kinds fall back to rules per candidate."
        ),
    )
    first_version: Literal["rules", "llm"] = Field(
        "rules",
        description=(
            "What an alert's version 1 carries with an LLM scorer. rules: the rule score, published"
            " as soon as the candidate is folded; the model's assessment follows as version 2"
            " (within update_deadline_ms), so the model's speed never delays an alert. llm: version"
            " 1 waits up to deadline_ms for the model, and goes out rule-scored and degraded"
            " without it (its answer, if it comes later, is version 2)."
        ),
    )
    deadline_ms: int = Field(
        600,
        ge=1,
        description=(
            "first_version llm: longest a micro-batch waits for the model before rule scores go out"
            " degraded (fits the 800 ms event-to-alert budget with the pipeline's own ~100 ms)."
            " Either way: an answer within it counts as in time (riskstream_llm_assessments_total"
            " outcome ok, else late)."
        ),
    )
    requests_in_flight: int = Field(
        64,
        ge=1,
        description=(
            "first_version rules: most model requests running at once (Flink's async I/O"
            " capacity). A candidate beyond it is not sent to the model: its rule-scored version 1"
            " stands (riskstream_llm_fallbacks_total reason shed), so a burst of candidates cannot"
            " queue unbounded work on the engine."
        ),
    )
    batches_in_flight: int = Field(
        16,
        ge=0,
        description=(
            "Folded micro-batches whose candidates may be with the scorer at once while the fold"
            " goes on (alerts still go out in fold order; offsets are committed only past"
            " published and audited ones). 0: the fold waits for each batch's alerts."
        ),
    )
    update_deadline_ms: int = Field(
        10_000,
        ge=1,
        description=(
            "Longest a model request may run in all; an answer after version 1 went out and before"
            " it is published as version 2 of the alert, after it the request is aborted."
        ),
    )
    engine_retry_s: float = Field(
        30.0, gt=0, description="After the engine or server fails, rules alone for this long."
    )
    max_tokens: int = Field(
        320,
        ge=ANSWER_MAX_TOKENS,
        description=(
            "Answer length cap. At least the output schema's longest answer in characters plus one"
            f" ({ANSWER_MAX_TOKENS}): the schema admits only one-byte characters, so no valid answer"
            " is cut off."
        ),
    )
    temperature: float = Field(0.0, ge=0, description="Sampling temperature; 0 is greedy.")
    prior_alerts: int = Field(
        5, ge=0, description="Recent alerts of the same entity retrieved into each prompt."
    )
    prior_alerts_max_chars: int = Field(
        1200, ge=0, description="Bound on the prior-alert context per prompt (≈ a quarter in tokens)."
    )
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RISKSTREAM_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    app_id: str = Field("riskstream", description="Faust app id: consumer group and table prefix.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicNames = Field(default_factory=TopicNames)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    windows: WindowSettings = Field(default_factory=WindowSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
    limits: LimitDefaults = Field(default_factory=LimitDefaults)
    limits_file: Path | None = Field(
        None,
        description="TOML file of per-account limits and linked (same beneficial owner) accounts.",
    )
    scorer: ScorerSettings = Field(default_factory=ScorerSettings)
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics port; 0 turns the endpoint off."
    )
    metrics_addr: str = Field(
        "127.0.0.1",
        description=(
            "Address the /metrics, /healthz and /readyz server binds. Loopback by default (the"
            " endpoint has no authentication); 0.0.0.0 in a container whose port is reached only"
            " by Prometheus and the kubelet (compose and k8s set it)."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Worker log level.")

    @model_validator(mode="after")
    def _vllm_has_a_model(self) -> Settings:
        if self.scorer.kind == "vllm" and self.scorer.vllm.model_path is None:
            raise ValueError("scorer.kind=vllm needs scorer.vllm.model_path (a local model directory)")
        return self

    @model_validator(mode="after")
    def _window_covers_detectors(self) -> Settings:
        """A pattern longer than the window would never be seen whole: refuse, don't miss it."""
        look_back_s = 2 * self.detectors.spoof_cancel_within_s
        if self.windows.activity_window_s < look_back_s:
            raise ValueError(
                f"windows.activity_window_s={self.windows.activity_window_s} is shorter than the "
                f"spoofing look-back (2 x detectors.spoof_cancel_within_s = {look_back_s})"
            )
        return self
