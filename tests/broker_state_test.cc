// Stateful property test of the broker's log (system/messaging/broker_log.h) against a model made of plain
// std containers.
//
// RapidCheck generates a sequence of commands on a log with two topics: "orders" (3 partitions,
// idempotent producer) and "audit" (2 partitions, at-least-once). Publishes use a few keys and two
// producers, whose seq is either the next one or a repeat of an earlier one (a retry); fetches
// read any range, out-of-range ones included; three members of one consumer group heartbeat
// while virtual time advances past the session timeout, and commit offsets of partitions they
// may or may not own; and the broker crashes and restarts on the same database.
//
// Every answer must equal the model's: positions and duplicates, fetched messages and end
// offsets, generations and assignments, commit refusals and committed offsets, and the
// counters. After a crash nothing durable may be lost (every partition and committed offset is
// compared with the model) while membership must be gone.
//
// CTest fixes RC_PARAMS (seed); a failure prints the shrunk command sequence and the
// RC_PARAMS="reproduce=..." string that replays it.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sim/random.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/messaging/broker_log.h"

namespace paylab::system {
namespace {

constexpr sim::Duration kTimeout = 10 * sim::kSecond;
constexpr std::string_view kGroup = "g";
constexpr int kOrders = 0;  // topic index: idempotent producer
constexpr int kAudit = 1;   // topic index: at-least-once
constexpr int kTopicCount = 2;

std::vector<TopicConfig> Topics() {
  return {TopicConfig{.name = "orders", .partitions = 3, .idempotent_producer = true},
          TopicConfig{.name = "audit", .partitions = 2, .idempotent_producer = false}};
}

std::string TopicName(int topic) { return Topics()[static_cast<size_t>(topic)].name; }
int32_t PartitionCount(int topic) { return Topics()[static_cast<size_t>(topic)].partitions; }

struct ModelMessage {
  std::string key;
  std::string payload;
  std::string producer;
  int64_t seq = 0;
  sim::Time published_at = 0;
};

struct LastAppend {
  int64_t seq = 0;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct Model {
  Model() {
    for (int t = 0; t < kTopicCount; ++t) {
      logs[static_cast<size_t>(t)].resize(static_cast<size_t>(PartitionCount(t)));
    }
  }

  std::vector<ModelMessage>& Log(int topic, int32_t partition) {
    return logs[static_cast<size_t>(topic)][static_cast<size_t>(partition)];
  }
  const std::vector<ModelMessage>& Log(int topic, int32_t partition) const {
    return logs[static_cast<size_t>(topic)][static_cast<size_t>(partition)];
  }
  int64_t End(int topic, int32_t partition) const {
    return static_cast<int64_t>(Log(topic, partition).size());
  }
  int64_t Committed(int topic, int32_t partition) const {
    const auto it = committed.find({topic, partition});
    return it == committed.end() ? 0 : it->second;
  }
  void Expire() {
    const size_t before = members.size();
    std::erase_if(members, [&](const auto& m) { return now - m.second > kTimeout; });
    if (members.size() != before) {
      ++generation;
      ++rebalances;
    }
  }
  std::vector<int32_t> Owned(const std::string& member, int32_t partitions) const {
    std::vector<int32_t> owned;
    const auto it = members.find(member);
    if (it == members.end()) {
      return owned;
    }
    const auto n = static_cast<int32_t>(members.size());
    for (int32_t p = 0; p < partitions; ++p) {
      if (p % n == static_cast<int32_t>(std::distance(members.begin(), it))) {
        owned.push_back(p);
      }
    }
    return owned;
  }

  // Durable: survives a crash.
  std::array<std::vector<std::vector<ModelMessage>>, kTopicCount> logs;
  std::map<std::string, LastAppend> last;                // orders' producers
  std::map<std::pair<int, int32_t>, int64_t> committed;  // group "g"
  // Volatile: lost in a crash (the counters belong to the process too).
  std::map<std::string, sim::Time> members;  // name -> last heartbeat
  int64_t generation = 0;
  int64_t appended = 0;
  int64_t deduplicated = 0;
  int64_t rebalances = 0;
  // Virtual time only moves forward, crash or not.
  sim::Time now = 0;
};

struct Sut {
  Sut() : log(std::make_unique<BrokerLog>(db, Topics())) {}
  sim::Database db;
  std::unique_ptr<BrokerLog> log;
};

using Command = rc::state::Command<Model, Sut>;

void AssertCounters(const Model& s, const BrokerLog& log) {
  RC_ASSERT(log.appended() == s.appended);
  RC_ASSERT(log.deduplicated() == s.deduplicated);
  RC_ASSERT(log.rebalances() == s.rebalances);
}

// The messages of a fetch reply equal the model's log from `offset` on.
void AssertMessages(const Model& s, int topic, int32_t partition, int64_t offset,
                    const std::vector<Message>& got) {
  for (size_t i = 0; i < got.size(); ++i) {
    const Message& m = got[i];
    const int64_t at = offset + static_cast<int64_t>(i);
    RC_ASSERT(at < s.End(topic, partition));
    const ModelMessage& want = s.Log(topic, partition)[static_cast<size_t>(at)];
    RC_ASSERT(m.topic == TopicName(topic));
    RC_ASSERT(m.partition == partition);
    RC_ASSERT(m.offset == at);
    RC_ASSERT(m.key == want.key);
    RC_ASSERT(m.payload == want.payload);
    RC_ASSERT(m.producer == want.producer);
    RC_ASSERT(m.seq == want.seq);
    RC_ASSERT(m.published_at == want.published_at);
  }
}

class Publish : public Command {
 public:
  explicit Publish(const Model& s)
      : topic_(*rc::gen::weightedElement<int>({{3, kOrders}, {1, kAudit}})),
        key_(*rc::gen::element<std::string>("k0", "k1", "k2", "k3", "k4")),
        payload_(
            *rc::gen::container<std::string>(rc::gen::inRange('a', static_cast<char>('z' + 1)))),
        producer_(*rc::gen::element<std::string>("p1", "p2")) {
    const auto it = s.last.find(producer_);
    const int64_t next = it == s.last.end() ? 0 : it->second.seq + 1;
    const bool retry = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    seq_ = retry && next > 0 ? *rc::gen::inRange<int64_t>(0, next) : next;
  }

  // Applies the publish to `s` and answers what the log must answer.
  PublishReply Expect(Model& s) const {
    PublishReply r;
    if (topic_ == kOrders) {
      const auto it = s.last.find(producer_);
      if (it != s.last.end() && seq_ <= it->second.seq) {
        r.partition = it->second.partition;
        r.offset = it->second.offset;
        r.duplicate = true;
        ++s.deduplicated;
        return r;
      }
    }
    r.partition =
        static_cast<int32_t>(sim::HashName(key_) % static_cast<uint64_t>(PartitionCount(topic_)));
    r.offset = s.End(topic_, r.partition);
    s.Log(topic_, r.partition).push_back(ModelMessage{key_, payload_, producer_, seq_, s.now});
    if (topic_ == kOrders) {
      s.last[producer_] = LastAppend{seq_, r.partition, r.offset};
    }
    ++s.appended;
    return r;
  }

  void apply(Model& s) const override { Expect(s); }

  void run(const Model& s0, Sut& sut) const override {
    Model s = s0;
    const PublishReply want = Expect(s);
    const PublishReply got =
        sut.log->Publish(TopicName(topic_), key_, payload_, producer_, seq_, s0.now);
    RC_ASSERT(got.status == BrokerStatus::kOk);
    RC_ASSERT(got.partition == want.partition);
    RC_ASSERT(got.offset == want.offset);
    RC_ASSERT(got.duplicate == want.duplicate);
    RC_ASSERT(sut.log->EndOffset(TopicName(topic_), want.partition) ==
              s.End(topic_, want.partition));
    AssertCounters(s, *sut.log);
  }

  void show(std::ostream& os) const override {
    os << "Publish(" << TopicName(topic_) << ", key=" << key_ << ", payload=\"" << payload_
       << "\", producer=" << producer_ << ", seq=" << seq_ << ")";
  }

 private:
  int topic_;
  std::string key_;
  std::string payload_;
  std::string producer_;
  int64_t seq_ = 0;
};

class Fetch : public Command {
 public:
  explicit Fetch(const Model& s)
      : topic_(*rc::gen::inRange(0, kTopicCount)),
        partition_(*rc::gen::inRange<int32_t>(-1, PartitionCount(topic_) + 1)),
        max_(*rc::gen::inRange<int64_t>(-1, 6)) {
    const int64_t end =
        partition_ >= 0 && partition_ < PartitionCount(topic_) ? s.End(topic_, partition_) : 0;
    offset_ = *rc::gen::inRange<int64_t>(-1, end + 3);
  }

  void run(const Model& s, Sut& sut) const override {
    const FetchReply got = sut.log->Fetch(TopicName(topic_), partition_, offset_, max_);
    if (partition_ < 0 || partition_ >= PartitionCount(topic_) || offset_ < 0 || max_ < 0) {
      RC_ASSERT(got.status == BrokerStatus::kInvalidArgument);
      RC_ASSERT(!got.reason.empty());
      RC_ASSERT(got.messages.empty());
      return;
    }
    const int64_t end = s.End(topic_, partition_);
    RC_ASSERT(got.status == BrokerStatus::kOk);
    RC_ASSERT(got.end_offset == end);
    const int64_t want_count = std::max<int64_t>(0, std::min(max_, end - offset_));
    RC_ASSERT(static_cast<int64_t>(got.messages.size()) == want_count);
    AssertMessages(s, topic_, partition_, offset_, got.messages);
  }

  void show(std::ostream& os) const override {
    os << "Fetch(" << TopicName(topic_) << ", partition=" << partition_ << ", offset=" << offset_
       << ", max=" << max_ << ")";
  }

 private:
  int topic_;
  int32_t partition_;
  int64_t max_;
  int64_t offset_ = 0;
};

class Heartbeat : public Command {
 public:
  Heartbeat()
      : member_(*rc::gen::element<std::string>("a", "b", "c")),
        topic_(*rc::gen::inRange(0, kTopicCount)),
        advance_s_(*rc::gen::inRange(0, 13)) {}

  Assignment Expect(Model& s) const {
    s.now += advance_s_ * sim::kSecond;
    s.Expire();
    const auto [it, joined] = s.members.insert_or_assign(member_, s.now);
    if (joined) {
      ++s.generation;
      ++s.rebalances;
    }
    Assignment a;
    a.generation = s.generation;
    a.partitions = s.Owned(member_, PartitionCount(topic_));
    return a;
  }

  void apply(Model& s) const override { Expect(s); }

  void run(const Model& s0, Sut& sut) const override {
    Model s = s0;
    const Assignment want = Expect(s);
    const Assignment got = sut.log->Heartbeat(kGroup, member_, TopicName(topic_), s.now, kTimeout);
    RC_ASSERT(got.status == BrokerStatus::kOk);
    RC_ASSERT(got.generation == want.generation);
    RC_ASSERT(got.partitions == want.partitions);
    AssertCounters(s, *sut.log);
  }

  void show(std::ostream& os) const override {
    os << "Heartbeat(" << member_ << ", " << TopicName(topic_) << ", +" << advance_s_ << "s)";
  }

 private:
  std::string member_;
  int topic_;
  int advance_s_;
};

class Commit : public Command {
 public:
  explicit Commit(const Model& s)
      : member_(*rc::gen::element<std::string>("a", "b", "c")),
        topic_(*rc::gen::inRange(0, kTopicCount)),
        partition_(*rc::gen::inRange<int32_t>(0, PartitionCount(topic_))),
        offset_(*rc::gen::inRange<int64_t>(0, s.End(topic_, partition_) + 2)) {}

  CommitReply Expect(Model& s) const {
    CommitReply r;
    if (offset_ > s.End(topic_, partition_)) {
      r.status = BrokerStatus::kInvalidArgument;
      return r;
    }
    r.committed = s.Committed(topic_, partition_);
    s.Expire();
    const std::vector<int32_t> owned = s.Owned(member_, PartitionCount(topic_));
    if (std::find(owned.begin(), owned.end(), partition_) == owned.end()) {
      r.status = BrokerStatus::kNotOwner;
      return r;
    }
    r.committed = std::max(r.committed, offset_);
    s.committed[{topic_, partition_}] = r.committed;
    return r;
  }

  void apply(Model& s) const override { Expect(s); }

  void run(const Model& s0, Sut& sut) const override {
    Model s = s0;
    const CommitReply want = Expect(s);
    const CommitReply got =
        sut.log->Commit(kGroup, member_, TopicName(topic_), partition_, offset_, s.now, kTimeout);
    RC_ASSERT(got.status == want.status);
    if (want.status != BrokerStatus::kOk) {
      RC_ASSERT(!got.reason.empty());
    }
    if (want.status != BrokerStatus::kInvalidArgument) {
      RC_ASSERT(got.committed == want.committed);
    }
    RC_ASSERT(sut.log->Committed(kGroup, TopicName(topic_), partition_) ==
              s.Committed(topic_, partition_));
    AssertCounters(s, *sut.log);
  }

  void show(std::ostream& os) const override {
    os << "Commit(" << member_ << ", " << TopicName(topic_) << ", partition=" << partition_
       << ", offset=" << offset_ << ")";
  }

 private:
  std::string member_;
  int topic_;
  int32_t partition_;
  int64_t offset_;
};

// Destroys the BrokerLog and constructs a new one on the same database.
class CrashRestart : public Command {
 public:
  void apply(Model& s) const override {
    s.members.clear();
    s.generation = 0;
    s.appended = 0;
    s.deduplicated = 0;
    s.rebalances = 0;
  }

  void run(const Model& s0, Sut& sut) const override {
    Model s = s0;
    apply(s);
    sut.log.reset();
    sut.log = std::make_unique<BrokerLog>(sut.db, Topics());
    AssertCounters(s, *sut.log);
    // Nothing durable is lost: every partition and committed offset is still there.
    for (int t = 0; t < kTopicCount; ++t) {
      for (int32_t p = 0; p < PartitionCount(t); ++p) {
        const int64_t end = s.End(t, p);
        RC_ASSERT(sut.log->EndOffset(TopicName(t), p) == end);
        const FetchReply all = sut.log->Fetch(TopicName(t), p, 0, end + 1);
        RC_ASSERT(all.status == BrokerStatus::kOk);
        RC_ASSERT(static_cast<int64_t>(all.messages.size()) == end);
        AssertMessages(s, t, p, 0, all.messages);
        RC_ASSERT(sut.log->Committed(kGroup, TopicName(t), p) == s.Committed(t, p));
      }
    }
  }

  void show(std::ostream& os) const override { os << "CrashRestart"; }
};

}  // namespace

RC_GTEST_PROP(BrokerStateProperty, LogMatchesTheModelAcrossCrashes, ()) {
  Sut sut;
  // Listing a command more than once makes it more likely.
  rc::state::check(
      Model{}, sut,
      rc::state::gen::execOneOfWithArgs<Publish, Publish, Publish, Fetch, Fetch, Heartbeat,
                                        Heartbeat, Commit, Commit, CrashRestart>());
}

}  // namespace paylab::system
