// Implementation of the payment service's reference model (see
// payment_model.h). Written from the rules in the header, not from
// system/payments/payment_service.cc.
#include "checks/models/payment_model.h"

#include <fmt/format.h>

#include <algorithm>

namespace paylab::models {

using system::CreatePaymentRequest;
using system::PaymentApplied;
using system::PaymentFactKind;
using system::PaymentOp;
using system::PaymentReply;
using system::PaymentReplyStatus;
using system::PaymentRow;

namespace {

std::string ReplyText(const PaymentReply& r) {
  if (r.status == PaymentReplyStatus::kRefused) {
    return r.reason.empty() ? "refused" : fmt::format("refused ({})", r.reason);
  }
  return fmt::format("ok: payment {} {}{}", r.payment_id,
                     system::PaymentStatusName(r.payment_status),
                     r.in_progress ? ", in progress" : "");
}

bool SameAnswer(const PaymentReply& want, const PaymentReply& got) {
  if (want.status != got.status) {
    return false;
  }
  if (want.status == PaymentReplyStatus::kRefused) {
    return true;  // the reason is text for people
  }
  return want.payment_id == got.payment_id && want.payment_status == got.payment_status &&
         want.in_progress == got.in_progress;
}

PaymentReply Refused(std::string_view why) {
  PaymentReply r;
  r.status = PaymentReplyStatus::kRefused;
  r.reason = why;
  return r;
}

std::string_view AccountName(PayAccount a) {
  switch (a) {
    case PayAccount::kWalletClearing:
      return "wallet clearing";
    case PayAccount::kPointClearing:
      return "point clearing";
    case PayAccount::kPartnerClearing:
      return "partner clearing";
    case PayAccount::kUnsettled:
      return "unsettled sales";
    case PayAccount::kSettled:
      return "settled sales";
    case PayAccount::kFees:
      return "fees";
  }
  return "?";
}

std::string NetText(const PaymentModel::Net& net) {
  std::string out;
  for (const auto& [where, delta] : net) {
    out += fmt::format("{}({} {}: {:+})", out.empty() ? "" : ", ", where.first,
                       AccountName(where.second), delta);
  }
  return out.empty() ? "nothing" : out;
}

// The rule for a malformed Create (payment_model.h); "" when well formed.
std::string_view Malformed(const CreatePaymentRequest& r) {
  const bool known_flow = r.flow == PaymentFlow::kCharge || r.flow == PaymentFlow::kEscrow ||
                          r.flow == PaymentFlow::kP2p;
  if (r.order_key.empty()) {
    return "an empty order key";
  }
  if (!known_flow) {
    return "an unknown flow";
  }
  if (r.payer <= 0 || r.payee <= 0) {
    return "a payer or payee that is no one";
  }
  if (r.amount <= 0) {
    return "an amount that is not positive";
  }
  if (r.partner_amount < 0 || r.partner_amount > r.amount) {
    return "a partner amount outside [0, amount]";
  }
  if (r.partner_amount > 0 && r.flow != PaymentFlow::kEscrow) {
    return "partner points on a flow other than escrow";
  }
  if (r.flow == PaymentFlow::kP2p && r.payer == r.payee) {
    return "a P2P transfer to the payer";
  }
  return {};
}

// The net change a fact's rows make per (owner, account), zeros dropped.
PaymentModel::Net NetOf(std::span<const system::PayJournalRow> rows) {
  PaymentModel::Net net;
  for (const system::PayJournalRow& j : rows) {
    net[{j.owner, j.account}] += j.delta;
  }
  std::erase_if(net, [](const auto& kv) { return kv.second == 0; });
  return net;
}

}  // namespace

PaymentModel::Payment* PaymentModel::Find(std::string_view key) {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : FindId(it->second);
}

PaymentModel::Payment* PaymentModel::FindId(uint64_t id) {
  const auto it = payments_.find(id);
  return it == payments_.end() ? nullptr : &it->second;
}

std::optional<PaymentModel::PaymentView> PaymentModel::PaymentOf(uint64_t id) const {
  const auto it = payments_.find(id);
  if (it == payments_.end()) {
    return std::nullopt;
  }
  const Payment& p = it->second;
  return PaymentView{p.id, p.status, p.resource, p.points, p.wallet};
}

std::string PaymentModel::Check(const PaymentApplied& a) {
  switch (a.kind) {
    case PaymentFactKind::kAnswered:
      return CheckAnswer(a);
    case PaymentFactKind::kCreated:
      return CheckCreated(*a.row);
    case PaymentFactKind::kStarted:
      return CheckStarted(*a.row);
    case PaymentFactKind::kFinalized:
      return CheckFinalized(a);
    case PaymentFactKind::kGaveUp:
      return CheckGaveUp(*a.row);
    case PaymentFactKind::kCleared:
      return CheckCleared(a);
  }
  return "a fact of an unknown kind";
}

// --- answers ----------------------------------------------------------------

namespace {

PaymentReply StateAnswer(uint64_t id, PaymentStatus status, ResourceStatus resource) {
  PaymentReply r;
  r.payment_id = id;
  r.payment_status = status;
  r.in_progress = resource == ResourceStatus::kWip;
  return r;
}

}  // namespace

std::string PaymentModel::PredictCreateAnswer(const CreatePaymentRequest& r, PaymentReply& want) {
  if (const std::string_view bad = Malformed(r); !bad.empty()) {
    want = Refused(bad);
    return "";
  }
  const Payment* p = Find(r.order_key);
  if (p == nullptr) {
    // A well-formed create of a new key creates its payment before it
    // answers; no payment means the service answered without one.
    return fmt::format("the service answered a create of {} for which it created no payment",
                       r.order_key);
  }
  if (p->flow != r.flow || p->payer != r.payer || p->payee != r.payee || p->amount != r.amount ||
      p->partner != r.partner_amount) {
    ++stats_.conflicts;
    want = Refused("the order key was used with other parameters");
    return "";
  }
  want = StateAnswer(p->id, p->status, p->resource);
  return "";
}

void PaymentModel::PredictCaptureAnswer(const Payment* p, PaymentReply& want) {
  if (p == nullptr) {
    want = Refused("no payment with this order key");
  } else if (p->status == PaymentStatus::kCaptured || p->resource == ResourceStatus::kWip) {
    want = StateAnswer(p->id, p->status, p->resource);
  } else if (p->status == PaymentStatus::kAuthorized && p->resource == ResourceStatus::kWait &&
             p->flow != PaymentFlow::kP2p) {
    // The capture starts first: an answer at rest means it did not.
    want = StateAnswer(p->id, p->status, ResourceStatus::kWip);
  } else {
    want = Refused("the payment is not authorized");
  }
}

void PaymentModel::PredictVoidAnswer(const Payment* p, PaymentReply& want) {
  if (p == nullptr) {
    want = Refused("no payment with this order key");
  } else if (p->status == PaymentStatus::kCaptured) {
    want = Refused("a captured payment cannot be voided");
  } else if (p->status == PaymentStatus::kAuthorized && p->resource == ResourceStatus::kWait &&
             p->flow != PaymentFlow::kP2p) {
    want = StateAnswer(p->id, p->status, ResourceStatus::kWip);
  } else {
    want = StateAnswer(p->id, p->status, p->resource);
  }
}

std::string PaymentModel::CheckAnswer(const PaymentApplied& a) {
  ++stats_.answers;
  PaymentReply want;
  const Payment* p = Find(a.order_key);
  switch (a.op) {
    case PaymentOp::kCreate:
      if (std::string broken = PredictCreateAnswer(*a.create, want); !broken.empty()) {
        return fmt::format("{}; it answered {}", broken, ReplyText(a.reply));
      }
      break;
    case PaymentOp::kCapture:
      PredictCaptureAnswer(p, want);
      break;
    case PaymentOp::kVoid:
      PredictVoidAnswer(p, want);
      break;
    case PaymentOp::kGet:
      want = p == nullptr ? Refused("no payment with this order key")
                          : StateAnswer(p->id, p->status, p->resource);
      break;
  }
  if (a.op != PaymentOp::kCreate && p == nullptr) {
    ++stats_.unknown_keys;
  }
  if (!SameAnswer(want, a.reply)) {
    return fmt::format("{} of order {} answered {}, the model says {}", PaymentOpName(a.op),
                       a.order_key, ReplyText(a.reply), ReplyText(want));
  }
  stats_.refusals += want.status == PaymentReplyStatus::kRefused ? 1 : 0;
  stats_.in_progress += want.status == PaymentReplyStatus::kOk && want.in_progress ? 1 : 0;
  return "";
}

// --- the state machine --------------------------------------------------------

std::string PaymentModel::CheckCreated(const PaymentRow& row) {
  CreatePaymentRequest r{row.order_key, row.flow,   row.payer,
                         row.payee,     row.amount, row.partner_amount};
  if (const std::string_view bad = Malformed(r); !bad.empty()) {
    return fmt::format("payment {} was created for order {} with {}, the model refuses it", row.id,
                       row.order_key, bad);
  }
  if (const Payment* old = Find(row.order_key); old != nullptr) {
    return fmt::format("payment {} was created for order {}, which already has payment {}", row.id,
                       row.order_key, old->id);
  }
  if (FindId(row.id) != nullptr) {
    return fmt::format("payment {} was created for order {}, but that ID names another payment",
                       row.id, row.order_key);
  }
  if (row.status != PaymentStatus::kCreated || row.resource_status != ResourceStatus::kWip ||
      row.request != PaymentRequestKind::kCreate || row.point_amount != 0 ||
      row.wallet_amount != 0) {
    return fmt::format(
        "payment {} was created {} ({}, request {}, points {}, wallet {}), the model says created "
        "(wip, request create, nothing held)",
        row.id, system::PaymentStatusName(row.status),
        system::ResourceStatusName(row.resource_status), static_cast<int>(row.request),
        row.point_amount, row.wallet_amount);
  }
  Payment p;
  p.id = row.id;
  p.key = row.order_key;
  p.flow = row.flow;
  p.payer = row.payer;
  p.payee = row.payee;
  p.amount = row.amount;
  p.partner = row.partner_amount;
  by_key_.emplace(p.key, p.id);
  payments_.emplace(p.id, std::move(p));
  ++stats_.created;
  return "";
}

std::string PaymentModel::CheckStarted(const PaymentRow& row) {
  Payment* p = FindId(row.id);
  const char* what = row.request == PaymentRequestKind::kCapture ? "capture" : "void";
  if (p == nullptr) {
    return fmt::format("a {} started on payment {}, which the model does not know", what, row.id);
  }
  if (row.request == PaymentRequestKind::kCreate) {
    return fmt::format("payment {} started a create again", row.id);
  }
  if (p->status != PaymentStatus::kAuthorized || p->resource != ResourceStatus::kWait ||
      p->flow == PaymentFlow::kP2p) {
    return fmt::format(
        "a {} was accepted on payment {} ({}, {} {}), the model says only an authorized charge or "
        "escrow at rest starts one",
        what, row.id, system::PaymentFlowName(p->flow), system::PaymentStatusName(p->status),
        system::ResourceStatusName(p->resource));
  }
  if (row.status != p->status || row.resource_status != ResourceStatus::kWip) {
    return fmt::format("payment {} started a {} as {} ({}), the model says authorized (wip)",
                       row.id, what, system::PaymentStatusName(row.status),
                       system::ResourceStatusName(row.resource_status));
  }
  p->resource = ResourceStatus::kWip;
  p->request = row.request;
  return "";
}

std::string PaymentModel::CheckGaveUp(const PaymentRow& row) {
  Payment* p = FindId(row.id);
  if (p == nullptr || p->resource != ResourceStatus::kWip) {
    return fmt::format("payment {} gave up a request it was not working on", row.id);
  }
  if (row.status != p->status || row.resource_status != ResourceStatus::kFailed) {
    return fmt::format("payment {} gave up as {} ({}), the model says {} (failed)", row.id,
                       system::PaymentStatusName(row.status),
                       system::ResourceStatusName(row.resource_status),
                       system::PaymentStatusName(p->status));
  }
  p->resource = ResourceStatus::kFailed;
  ++stats_.gave_up;
  return "";
}

std::string PaymentModel::CheckFunding(const Payment& p, const PaymentRow& row) const {
  const int64_t points = row.point_amount;
  const int64_t wallet = row.wallet_amount;
  if (p.flow == PaymentFlow::kP2p) {
    if (points != 0 || wallet != p.amount) {
      return fmt::format(
          "P2P transfer {} of {} held points {} and wallet {}, the model says the wallet holds all",
          p.id, p.amount, points, wallet);
    }
    return "";
  }
  if (points < 0 || points > p.amount - p.partner || wallet != p.amount - p.partner - points) {
    return fmt::format(
        "payment {} of {} (partner {}) held points {} and wallet {}, the model says points within "
        "[0, {}] and the wallet the rest ({})",
        p.id, p.amount, p.partner, points, wallet, p.amount - p.partner,
        p.amount - p.partner - points);
  }
  return "";
}

std::string PaymentModel::CheckFinalized(const PaymentApplied& a) {
  const PaymentRow& row = *a.row;
  Payment* p = FindId(row.id);
  if (p == nullptr) {
    return fmt::format("payment {} was finalized, but the model does not know it", row.id);
  }
  if (p->resource != ResourceStatus::kWip || row.request != p->request) {
    return fmt::format(
        "payment {} finalized a request {} while the model has it {} ({}, request {})", row.id,
        static_cast<int>(row.request), system::PaymentStatusName(p->status),
        system::ResourceStatusName(p->resource), static_cast<int>(p->request));
  }
  switch (row.request) {
    case PaymentRequestKind::kCreate:
      return FinalizeCreate(*p, row, a);
    case PaymentRequestKind::kCapture:
      return FinalizeCapture(*p, row, a);
    case PaymentRequestKind::kVoid:
      if (row.status != PaymentStatus::kVoided || row.resource_status != ResourceStatus::kWait) {
        return fmt::format("payment {} finalized its void as {} ({}), the model says voided (wait)",
                           row.id, system::PaymentStatusName(row.status),
                           system::ResourceStatusName(row.resource_status));
      }
      if (std::string diff = CompareJournal(a, {}, p->id); !diff.empty()) {
        return diff;
      }
      p->status = PaymentStatus::kVoided;
      p->resource = ResourceStatus::kWait;
      ++stats_.voided;
      return "";
  }
  return "a request of an unknown kind";
}

std::string PaymentModel::FinalizeCreate(Payment& p, const PaymentRow& row,
                                         const PaymentApplied& a) {
  // Whether the participants held or declined is theirs to say: the model
  // allows either outcome, and holds each to its rule.
  const PaymentStatus held =
      p.flow == PaymentFlow::kP2p ? PaymentStatus::kCaptured : PaymentStatus::kAuthorized;
  const bool failed =
      row.status == PaymentStatus::kFailed && row.resource_status == ResourceStatus::kFailed;
  const bool ok = row.status == held && row.resource_status == ResourceStatus::kWait;
  if (!failed && !ok) {
    return fmt::format(
        "payment {} ({}) finalized its create as {} ({}), the model says {} (wait) or failed "
        "(failed)",
        p.id, system::PaymentFlowName(p.flow), system::PaymentStatusName(row.status),
        system::ResourceStatusName(row.resource_status), system::PaymentStatusName(held));
  }
  if (ok) {
    if (std::string diff = CheckFunding(p, row); !diff.empty()) {
      return diff;
    }
  }
  // A P2P transfer moves wallet to wallet: the merchant ledger sees none.
  if (std::string diff = CompareJournal(a, {}, p.id); !diff.empty()) {
    return diff;
  }
  p.status = row.status;
  p.resource = row.resource_status;
  if (ok) {
    p.points = row.point_amount;
    p.wallet = row.wallet_amount;
  }
  stats_.failed += failed ? 1 : 0;
  stats_.authorized += ok && held == PaymentStatus::kAuthorized ? 1 : 0;
  stats_.captured += ok && held == PaymentStatus::kCaptured ? 1 : 0;
  return "";
}

std::string PaymentModel::FinalizeCapture(Payment& p, const PaymentRow& row,
                                          const PaymentApplied& a) {
  if (row.status != PaymentStatus::kCaptured || row.resource_status != ResourceStatus::kWait) {
    return fmt::format(
        "payment {} finalized its capture as {} ({}), the model says captured (wait)", p.id,
        system::PaymentStatusName(row.status), system::ResourceStatusName(row.resource_status));
  }
  if (row.point_amount != p.points || row.wallet_amount != p.wallet) {
    return fmt::format(
        "payment {} was captured holding points {} and wallet {}, but was authorized holding "
        "points {} and wallet {}",
        p.id, row.point_amount, row.wallet_amount, p.points, p.wallet);
  }
  Net want;
  want[{0, PayAccount::kWalletClearing}] -= p.wallet;
  want[{0, PayAccount::kPointClearing}] -= p.points;
  want[{0, PayAccount::kPartnerClearing}] -= p.partner;
  if (p.flow == PaymentFlow::kEscrow) {
    want[{0, PayAccount::kWalletClearing}] += p.amount;  // the seller's payout
  } else {
    want[{p.payee, PayAccount::kUnsettled}] += p.amount;
  }
  std::erase_if(want, [](const auto& kv) { return kv.second == 0; });
  if (std::string diff = CompareJournal(a, want, p.id); !diff.empty()) {
    return diff;
  }
  if (p.flow != PaymentFlow::kEscrow) {
    // The sales credit, named by the row that made it.
    const system::PayJournalRow* credit = nullptr;
    for (const system::PayJournalRow& j : a.journal) {
      if (j.account == PayAccount::kUnsettled) {
        if (credit != nullptr) {
          return fmt::format("payment {}'s capture credited unsettled sales in two rows", p.id);
        }
        credit = &j;
      }
    }
    if (credit == nullptr) {
      return fmt::format("payment {}'s capture wrote no sales credit", p.id);
    }
    uncovered_[p.payee].push_back(Credit{credit->seq, p.id, p.amount});
  }
  Apply(want);
  p.status = PaymentStatus::kCaptured;
  p.resource = ResourceStatus::kWait;
  ++stats_.captured;
  return "";
}

// --- the merchant ledger ------------------------------------------------------

std::string PaymentModel::CompareJournal(const PaymentApplied& a, const Net& want,
                                         uint64_t payment) const {
  const Net got = NetOf(a.journal);
  const std::string what = payment == 0 ? fmt::format("the clearing of merchant {}", a.merchant)
                                        : fmt::format("payment {}'s {}", payment,
                                                      a.kind == PaymentFactKind::kFinalized
                                                          ? system::PaymentStatusName(a.row->status)
                                                          : "fact");
  if (got != want) {
    return fmt::format("{} moved {} in the merchant ledger, the model says {}", what, NetText(got),
                       NetText(want));
  }
  for (const system::PayJournalRow& j : a.journal) {
    if (j.payment != payment || j.movement != a.journal.front().movement) {
      return fmt::format(
          "{} wrote row {} (movement {}, payment {}), the model says every row of one movement "
          "carries payment {}",
          what, j.seq, j.movement, j.payment, payment);
    }
  }
  return "";
}

void PaymentModel::Apply(const Net& net) {
  for (const auto& [where, delta] : net) {
    balances_[where] += delta;
  }
}

std::string PaymentModel::CheckCleared(const PaymentApplied& a) {
  const int64_t m = a.merchant;
  std::vector<Credit>& open = uncovered_[m];
  // The credits the clearing says it covered, against the ones the model
  // has open for the merchant (both by seq).
  std::string got_list;
  std::string want_list;
  for (const system::PayClearedCredit& c : a.credits) {
    got_list += fmt::format("{}{}/{}", got_list.empty() ? "" : " ", c.credit_seq, c.payment);
  }
  int64_t sum = 0;
  for (const Credit& c : open) {
    want_list += fmt::format("{}{}/{}", want_list.empty() ? "" : " ", c.seq, c.payment);
    sum += c.amount;
  }
  if (open.empty()) {
    return fmt::format("merchant {} was cleared covering [{}], the model has nothing to clear", m,
                       got_list);
  }
  if (got_list != want_list) {
    return fmt::format(
        "the clearing of merchant {} covered credits [{}] (seq/payment), the model says [{}]", m,
        got_list, want_list);
  }
  // The fee, once on the sum, rounded down (seed 004: fees computed at
  // clearing; payment.h: floor). Amounts are positive, so floor is the
  // integer quotient.
  const int64_t fee = sum * rules_.fee_bp / 10000;
  Net want;
  want[{m, PayAccount::kUnsettled}] = -sum;
  want[{m, PayAccount::kSettled}] = sum - fee;
  want[{0, PayAccount::kFees}] = fee;
  std::erase_if(want, [](const auto& kv) { return kv.second == 0; });
  if (std::string diff = CompareJournal(a, want, 0); !diff.empty()) {
    return fmt::format("{} (sales {}, fee {} at {} bp rounded down)", diff, sum, fee,
                       rules_.fee_bp);
  }
  Apply(want);
  covered_ += open.size();
  stats_.credits_cleared += static_cast<int64_t>(open.size());
  stats_.fees += fee;
  ++stats_.clearings;
  open.clear();
  return "";
}

}  // namespace paylab::models
