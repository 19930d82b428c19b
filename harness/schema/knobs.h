// Every scalar knob of a scenario section, declared once: its C++ type, its
// name (the JSON field and the struct member), its default, whether a file
// must give it, the values it accepts, its unit and a line saying what it
// is. From these lists come the section structs (scenario.h), the loader's
// reading with field-level errors, the canonical writer ToJson, and the
// field tables of scenarios/README.md (a test holds them against these).
//
// Each list is an X-macro: KNOB(type, name, default, need, range, unit, doc)
// for a scalar knob, and, in the sections that have them, FIELD(name, doc)
// for a field the loader reads with its own code (a nested object, an enum,
// a default derived from other fields). The order is the order the loader
// checks the fields in, and the order the README lists them.
//
// Ranges are the loader's (scenario.cc): kProbability, kSecondsPositive,
// AtLeast(min, max), Within(min, max), AtLeastField("other_field"), ...
// Adding a knob: one line here, and the code that uses it.
#pragma once

#define PAYLAB_WORKLOAD_KNOBS(KNOB, FIELD)                                                       \
  KNOB(int64_t, operations, 0, kRequired, AtLeast<int64_t>(1), "operations",                   \
       "Total number of operations the client sends.")                                         \
  KNOB(double, rate_per_s, 0, kRequired, Above(0.0), "per virtual second",                     \
       "Poisson arrival rate of operations.")                                                  \
  FIELD(mix, "Relative weights of the operation kinds.")                                       \
  KNOB(int64_t, amount_min, 1, kOptional, AtLeast<int64_t>(1), "currency units",               \
       "Smallest amount of an operation.")                                                     \
  KNOB(int64_t, amount_max, 10000, kOptional, AtLeastField<int64_t>("amount_min"),             \
       "currency units", "Largest amount of an operation.")                                    \
  FIELD(deposit_type, "Account type that deposits credit.")                                    \
  KNOB(double, rollback_ratio, 0.1, kOptional, kProbability, "fraction",                       \
       "Two-phase operations: fraction rolled back instead of committed.")                     \
  KNOB(double, abandon_ratio, 0.02, kOptional, kProbability, "fraction",                       \
       "Two-phase operations: fraction left for the hold to expire.")                          \
  KNOB(double, hold_ttl_s, 30, kOptional, kSecondsPositive, "s",                               \
       "Time to live the client asks for when it prepares a hold.")                            \
  KNOB(double, timeout_ms, 200, kOptional, kMillisPositive, "ms",                              \
       "How long the client waits for a reply before it gives up on an attempt.")              \
  KNOB(int64_t, retry_count_max, 5, kOptional, Within<int64_t>(0, 100), "retries",             \
       "Retries after the first attempt of one operation.")                                    \
  KNOB(double, retry_backoff_ms, 50, kOptional, kMillisNonNegative, "ms",                      \
       "Pause before each retry.")                                                             \
  KNOB(double, boundary_ratio, 0, kOptional, kProbability, "fraction",                         \
       "Share of operations aimed at a boundary (an instant or an amount).")

#define PAYLAB_MIX_KNOBS(KNOB, FIELD)                                                          \
  KNOB(double, deposit, 0, kOptional, AtLeast(0.0), "",                                        \
       "Money entering from outside into the user's deposit_type account.")                    \
  KNOB(double, transfer, 1, kOptional, AtLeast(0.0), "", "User-to-user transfer.")             \
  KNOB(double, two_phase, 0, kOptional, AtLeast(0.0), "",                                      \
       "Prepare a hold, then commit, roll back or abandon it.")                                \
  KNOB(double, misuse, 0, kOptional, AtLeast(0.0), "",                                         \
       "Requests the wallet must refuse without side effects.")

#define PAYLAB_LATENCY_KNOBS(KNOB, FIELD)                                                      \
  FIELD(distribution, "constant, uniform or lognormal.")                                       \
  KNOB(double, min, 0.2, kOptional, kMillisNonNegative, "ms", "Smallest latency.")             \
  KNOB(double, max, 50, kOptional, AtLeastField("min", kDurationMillisMax), "ms",              \
       "Largest latency.")                                                                     \
  KNOB(double, median, 1, kOptional, kMillisPositive, "ms",                                    \
       "Median latency (the value of a constant distribution).")                               \
  KNOB(double, sigma, 0.5, kOptional, AtLeast(0.0), "",                                        \
       "Spread of the log-normal distribution (standard deviation of the log).")

#define PAYLAB_WALLET_KNOBS(KNOB, FIELD)                                                       \
  KNOB(double, expiry_scan_interval_s, 5, kOptional, kSecondsPositive, "s",                    \
       "How often the wallet's background job expires holds and balance items.")               \
  KNOB(double, hold_ttl_max_s, 3600, kOptional, kSecondsPositive, "s",                         \
       "Longest time to live the wallet accepts for a hold.")

#define PAYLAB_MESSAGING_KNOBS(KNOB, FIELD)                                                    \
  KNOB(bool, enabled, false, kOptional, kAny, "", "Builds the broker and the mirror.")         \
  KNOB(int64_t, partitions, 4, kOptional, Within<int64_t>(1, 64), "partitions",                \
       "Partitions of the movement topic.")                                                    \
  KNOB(bool, idempotent_producer, false, kOptional, kAny, "",                                  \
       "The broker drops a publish it has already appended.")                                  \
  KNOB(double, relay_interval_ms, 50, kOptional, kMillisPositive, "ms",                        \
       "How often the wallet's relay publishes its outbox.")                                   \
  KNOB(int64_t, relay_batch_max, 100, kOptional, Within<int64_t>(1, 10000), "rows",            \
       "Outbox rows the relay publishes per round.")                                           \
  KNOB(int64_t, consumer_members, 2, kOptional, Within<int64_t>(1, 16), "consumers",           \
       "Consumers in the mirror's group.")                                                     \
  KNOB(double, poll_interval_ms, 50, kOptional, kMillisPositive, "ms",                         \
       "How often a consumer polls when it has nothing.")                                      \
  KNOB(int64_t, fetch_max, 100, kOptional, Within<int64_t>(1, 10000), "messages",              \
       "Messages per fetch.")                                                                  \
  KNOB(double, session_timeout_ms, 3000, kOptional, kMillisPositive, "ms",                     \
       "A member silent this long leaves its group.")                                          \
  KNOB(double, rpc_timeout_ms, 200, kOptional, kMillisPositive, "ms",                          \
       "Timeout of every call to the broker.")                                                 \
  KNOB(double, duplicate_delivery, 0, kOptional, kProbability, "probability",                  \
       "Fault: a fetch re-delivers earlier messages.")                                         \
  KNOB(bool, audit_queue, true, kOptional, kAny, "",                                           \
       "A queue fed by the topic, read by the mirror's audit worker.")                         \
  KNOB(double, visibility_timeout_ms, 1000, kOptional, kMillisPositive, "ms",                  \
       "A received message stays hidden this long unless deleted.")                            \
  KNOB(int64_t, max_receives, 10, kOptional, Within<int64_t>(1, 1000), "receives",             \
       "Receives of one message before it is dead-lettered.")                                  \
  KNOB(bool, dead_letter_queue, true, kOptional, kAny, "",                                     \
       "The audit queue has a dead-letter queue.")                                             \
  KNOB(int64_t, poison_messages, 0, kOptional, Within<int64_t>(0, 1000), "messages",           \
       "Fault: undecodable messages put into the audit queue.")                                \
  KNOB(double, redrive_at_s, 0, kOptional, kSecondsNonNegative, "s",                           \
       "Operator: redrive the dead-letter queue at this time (0 = never).")

#define PAYLAB_PAYMENTS_KNOBS(KNOB, FIELD)                                                     \
  KNOB(bool, enabled, false, kOptional, kAny, "",                                              \
       "The point, payment, partner, checkout and marketplace nodes; needs messaging.")        \
  KNOB(int64_t, topic_partitions, 4, kOptional, Within<int64_t>(1, 64), "partitions",         \
       "Partitions of the payment events topic.")                                              \
  KNOB(int64_t, merchants, 100, kOptional, Within<int64_t>(1, 1000000), "merchants",           \
       "Merchants the checkout charges for, ids 1..merchants.")                                \
  KNOB(int64_t, initial_points, 0, kOptional, AtLeast<int64_t>(0), "points",                   \
       "Points per user at the start (confirmed lots).")                                       \
  KNOB(double, point_expiry_days, 90, kOptional, kDaysPositive, "days",                        \
       "How long a lot of points lives.")                                                      \
  KNOB(int64_t, charges, 0, kOptional, AtLeast<int64_t>(0), "orders", "Checkout orders.")      \
  KNOB(double, charge_rate_per_s, 1, kOptional, kRatePositive, "per virtual second",           \
       "Their Poisson arrival rate.")                                                          \
  KNOB(int64_t, escrows, 0, kOptional, AtLeast<int64_t>(0), "orders",                          \
       "Marketplace orders (escrows and P2P transfers).")                                      \
  KNOB(double, escrow_rate_per_s, 1, kOptional, kRatePositive, "per virtual second",           \
       "Their Poisson arrival rate.")                                                          \
  KNOB(double, p2p_ratio, 0.1, kOptional, kProbability, "fraction",                            \
       "Share of marketplace orders that are P2P transfers.")                                  \
  KNOB(double, partner_ratio, 0.2, kOptional, kProbability, "fraction",                        \
       "Share of escrows that also pay with partner points.")                                  \
  KNOB(int64_t, partner_amount_max, 500, kOptional, AtLeast<int64_t>(1), "points",             \
       "The most partner points an escrow takes.")                                             \
  KNOB(int64_t, partner_initial_balance, 5000, kOptional, AtLeast<int64_t>(0), "points",       \
       "Partner points per user at the start.")                                                \
  KNOB(double, partner_unavailable, 0.05, kOptional, kProbability, "probability",              \
       "Fault: the partner answers unavailable.")                                              \
  KNOB(double, partner_service_ms_min, 20, kOptional, kMillisNonNegative, "ms",                \
       "The partner's service time, lower bound.")                                             \
  KNOB(double, partner_service_ms_max, 500, kOptional, kMillisNonNegative, "ms",               \
       "The partner's service time, upper bound.")                                             \
  KNOB(int64_t, amount_min, 100, kOptional, AtLeast<int64_t>(1), "currency units",             \
       "Order amounts, lower bound.")                                                          \
  KNOB(int64_t, amount_max, 5000, kOptional, AtLeast<int64_t>(1), "currency units",            \
       "Order amounts, upper bound.")                                                          \
  KNOB(double, void_ratio, 0.1, kOptional, kProbability, "fraction",                           \
       "Share of authorised orders voided instead of captured.")                               \
  KNOB(double, capture_delay_s_min, 1, kOptional, kSecondsNonNegative, "s",                    \
       "Delay between authorisation and capture, lower bound.")                                \
  KNOB(double, capture_delay_s_max, 60, kOptional, kSecondsNonNegative, "s",                   \
       "Delay between authorisation and capture, upper bound.")                                \
  KNOB(double, upstream_timeout_ms, 2000, kOptional, kMillisPositive, "ms",                    \
       "The upstreams' timeout per payment call.")                                             \
  KNOB(int64_t, upstream_retry_count_max, 4, kOptional, Within<int64_t>(0, 100), "retries",    \
       "Retries of a create before the order is marked failed.")                               \
  KNOB(double, rpc_timeout_ms, 300, kOptional, kMillisPositive, "ms",                          \
       "The payment service's timeout per participant call.")                                  \
  KNOB(double, partner_timeout_ms, 2000, kOptional, kMillisPositive, "ms",                     \
       "Its timeout for the partner.")                                                         \
  KNOB(int64_t, worker_attempts_max, 5, kOptional, Within<int64_t>(1, 100), "attempts",        \
       "Layer 1: calls per step before the worker gives up.")                                  \
  KNOB(double, queue_backoff_s_min, 60, kOptional, kSecondsPositive, "s",                      \
       "Layer 2: the request queue's first backoff.")                                          \
  KNOB(double, queue_backoff_s_max, 3600, kOptional, kSecondsPositive, "s",                    \
       "Layer 2: the request queue's longest backoff.")                                        \
  KNOB(double, batch_interval_s, 3600, kOptional, kSecondsNonNegative, "s",                    \
       "Layer 3: the recovery batch's period (0 = off).")                                      \
  KNOB(double, recovery_horizon_days, 3, kOptional, kDaysPositive, "days",                     \
       "How far back the batch looks for WIP payments.")                                       \
  KNOB(double, hold_ttl_s, sim::ToSeconds(system::PaymentConfig{}.hold_ttl), kOptional, kSecondsPositive, "s",          \
       "Lifetime of the payments' holds at the participants.")                                 \
  KNOB(int64_t, fee_bp, 250, kOptional, Within<int64_t>(0, 10000), "basis points",             \
       "Merchant fee.")                                                                        \
  KNOB(double, clearing_interval_s, 60, kOptional, kSecondsNonNegative, "s",                   \
       "The clearing job's period (0 = off).")                                                 \
  KNOB(int64_t, reward_bp, 100, kOptional, Within<int64_t>(0, 10000), "basis points",          \
       "Points granted per payment, of its amount.")                                           \
  KNOB(double, assignment_failure, 0, kOptional, kProbability, "probability",                  \
       "Fault: a point assignment fails transiently.")                                         \
  KNOB(double, assignment_redrive_at_s, 0, kOptional, kSecondsNonNegative, "s",                \
       "Operator: redrive the assignment dead-letter queue (0 = never).")                      \
  KNOB(double, misuse_ratio, 0, kOptional, kProbability, "fraction",                           \
       "Share of finished orders an upstream follows with one misuse call.")                   \
  KNOB(double, misuse_rate_per_s, 0, kOptional, AtLeast(0.0, 1e6), "per virtual second",       \
       "Fault: the hostile caller's misuse sequences per second (0 = off).")

#define PAYLAB_MIGRATION_KNOBS(KNOB, FIELD)                                                    \
  KNOB(bool, enabled, false, kOptional, kAny, "", "Builds the migration world.")               \
  KNOB(std::string, strategy, "online", kOptional, kAny, "",                                   \
       "full_maintenance, partial_maintenance, online or gradual.")                            \
  KNOB(std::string, cashback_type, "CASHBACK", kOptional, kAny, "", "The account that moves.") \
  KNOB(std::string, money_type, "MONEY", kOptional, kAny, "", "Where top-ups go.")             \
  KNOB(double, start_s, 10, kOptional, kSecondsNonNegative, "s", "When the migration starts.") \
  KNOB(double, copy_ms_per_user, 1, kOptional, AtLeast(0.0, 60000.0), "ms",                    \
       "The time moving one user's data takes.")                                               \
  KNOB(int64_t, batch_size, 500, kOptional, Within<int64_t>(1, 100000), "users",               \
       "full: users moved per batch.")                                                         \
  KNOB(int64_t, cohorts, 4, kOptional, Within<int64_t>(1, 10000), "cohorts",                   \
       "partial: cohorts, equal ranges of users.")                                             \
  KNOB(double, cohort_gap_s, 60, kOptional, kSecondsNonNegative, "s",                          \
       "partial: from one cohort's window to the next.")                                       \
  KNOB(double, banner_lead_s, 20, kOptional, kSecondsNonNegative, "s",                         \
       "partial: banner shown this long before a window.")                                     \
  KNOB(int64_t, cohort_attempts_max, 3, kOptional, Within<int64_t>(1, 100), "attempts",        \
       "partial: tries of a cohort before it is skipped.")                                     \
  KNOB(double, drain_timeout_s, 60, kOptional, kSecondsPositive, "s",                          \
       "How long a drain waits for in-flight holds.")                                          \
  KNOB(double, job_rate_per_s, 200, kOptional, kRatePositive, "per virtual second",            \
       "online, gradual: users started per second.")                                           \
  KNOB(bool, dual_write, true, kOptional, kAny, "", "online: copies kept by dual-write.")      \
  KNOB(double, reconcile_interval_s, 2, kOptional, kSecondsNonNegative, "s",                   \
       "online: a reconciliation batch this often (0 = off).")                                 \
  KNOB(int64_t, reconcile_batch, 500, kOptional, Within<int64_t>(1, 100000), "users",          \
       "Users per reconciliation batch.")                                                      \
  KNOB(double, rpc_timeout_ms, 200, kOptional, kMillisPositive, "ms",                          \
       "The services' timeout per call to another.")                                           \
  KNOB(double, sample_interval_s, 5, kOptional, Above(0.0, 86400.0), "s",                      \
       "The report's time series resolution.")                                                 \
  KNOB(double, pay, 0.6, kOptional, AtLeast(0.0, 1e6), "weight", "Weight of payments.")              \
  KNOB(double, earn, 0.25, kOptional, AtLeast(0.0, 1e6), "weight", "Weight of cashback credits.")    \
  KNOB(double, topup, 0.1, kOptional, AtLeast(0.0, 1e6), "weight", "Weight of top-ups.")             \
  KNOB(double, lookup, 0.05, kOptional, AtLeast(0.0, 1e6), "weight", "Weight of lookups by id.")     \
  KNOB(double, use_points_ratio, 0.7, kOptional, kProbability, "fraction",                     \
       "Share of payments that may use points.")                                               \
  KNOB(double, new_api_ratio, 0.5, kOptional, kProbability, "fraction",                        \
       "Share of payments sent to the point service's new API.")                               \
  KNOB(double, pair_ratio, 0.05, kOptional, kProbability, "fraction",                          \
       "Share of payments with a concurrent twin for the same user.")                          \
  KNOB(double, misuse_ratio, 0, kOptional, kProbability, "fraction",                           \
       "Share of finished payments followed by one misuse.")                                   \
  KNOB(int64_t, earn_min, 10, kOptional, AtLeast<int64_t>(1), "currency units",                \
       "Cashback credited per earn, lower bound.")                                             \
  KNOB(int64_t, earn_max, 300, kOptional, AtLeast<int64_t>(1), "currency units",               \
       "Cashback credited per earn, upper bound.")                                             \
  KNOB(double, commit_delay_s_max, 5, kOptional, kSecondsNonNegative, "s",                     \
       "A checkout's pause between prepare and commit.")                                       \
  KNOB(double, maintenance_retry_s, 30, kOptional, kSecondsPositive, "s",                      \
       "An earn refused for maintenance is retried after this.")

// Expands KNOB into a member with its default, for the section structs.
#define PAYLAB_DECLARE_KNOB(type, name, default_value, need, range, unit, doc) \
  type name = default_value;
#define PAYLAB_SKIP_FIELD(name, doc)
