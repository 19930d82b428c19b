// Swarm testing (TigerBeetle's options_swarm, Groce et al.'s "swarm
// testing"): per seed, a random subset of a scenario's fault types at
// random rates, so that a sweep explores runs where one fault dominates
// and others are absent, rather than every run mixing every fault alike.
//
// Swarm(s, seed) returns the scenario with its faults redrawn. The
// scenario's configured faults are the menu and the ceiling: each fault
// type (every network probability, each crash plan, each partition, each
// fault point, each scheduled fault, the broker's duplicate deliveries, the
// partner's unavailability, point-assignment failures, poison messages) is
// kept with probability 1/2; a kept rate is scaled by a factor drawn in
// [1/4, 1], a kept crash plan's mean interval by one in [1, 4]. The
// upstreams' misuse share (payments.misuse_ratio) is kept with probability
// 1/2 and scaled by a factor in (0, 1], drawn from the stream
// "swarm.misuse". The client's boundary share and misuse weight and the
// shopper's misuse share are kept or dropped like a rate. The hostile
// caller's misuse rate is always kept and scaled in [1/4, 1]: it is the
// workload its scenario exists for, and its check is required. Nothing is
// added that the scenario does not configure. A knob added later is drawn
// after all the others, so the draws of the ones before it do not move.
//
// Determinism: a pure function of (scenario, seed), drawn from the streams
// "swarm" and "swarm.misuse", which nothing else reads. The run records the
// drawn knobs (report.json's "swarm_faults", SwarmDraw), and `paylab run
// --swarm --seed N` draws the same ones again.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "harness/schema/scenario.h"

namespace paylab::scenarios {

Scenario Swarm(const Scenario& s, uint64_t seed);

// What a swarm draw set, as recorded in a run's "swarm_faults": the faults
// object (the scenario's own form) and, keyed by their JSON pointers, the
// knobs drawn outside /faults for the worlds the scenario runs
// (/messaging/duplicate_delivery, /messaging/poison_messages,
// /payments/partner_unavailable, /payments/assignment_failure,
// /payments/misuse_rate_per_s).
nlohmann::json SwarmDraw(const Scenario& s);

}  // namespace paylab::scenarios
