#include "event_queue.h"

namespace engine {

EventQueue::~EventQueue() {
  for (auto& entry : buckets_) delete entry.second;
  for (Buckets::node_type& node : spareNodes_) delete node.mapped();
}

EventQueue::Bucket* EventQueue::bucketAt(Tick time) {
  auto it = buckets_.lower_bound(time);
  if (it != buckets_.end() && it->first == time) return it->second;
  if (spareNodes_.empty()) return buckets_.emplace_hint(it, time, new Bucket())->second;
  // a spare map node: no allocation for the map's entry or the bucket's vectors
  Buckets::node_type node = std::move(spareNodes_.back());
  spareNodes_.pop_back();
  node.key() = time;
  return buckets_.insert(it, std::move(node))->second;
}

uint32_t EventQueue::addEntry(Bucket* bucket, EventHandler* handler, uint64_t arg) {
  // filled in place (here and below): a struct built on the stack and copied in stalls on its stores
  Entry& entry = bucket->entries.emplace_back();
  entry.handler = handler;
  entry.arg = arg;
  entry.next = kEnd;
  return static_cast<uint32_t>(bucket->entries.size() - 1);
}

uint32_t EventQueue::addGroup(Bucket* bucket, uint32_t entry, int npu) {
  Group& group = bucket->groups.emplace_back();
  group.head = group.tail = entry;
  group.npu = npu;
  return static_cast<uint32_t>(bucket->groups.size() - 1);
}

void EventQueue::schedule(Tick delay, EventHandler* handler, uint64_t arg) {
  Bucket* bucket = bucketAt(now_ + delay);
  addGroup(bucket, addEntry(bucket, handler, arg), -1);
}

void EventQueue::scheduleForNpu(int npu, Tick delay, EventHandler* handler, uint64_t arg) {
  Tick time = now_ + delay;
  for (const OpenGroup& open : openGroups_[npu]) {
    if (open.time != time) continue;
    uint32_t entry = addEntry(open.bucket, handler, arg);
    Group& group = open.bucket->groups[open.group];
    open.bucket->entries[group.tail].next = entry;
    group.tail = entry;
    return;
  }
  Bucket* bucket = bucketAt(time);
  uint32_t group = addGroup(bucket, addEntry(bucket, handler, arg), npu);
  OpenGroup& open = openGroups_[npu].emplace_back();
  open.time = time;
  open.bucket = bucket;
  open.group = group;
}

void EventQueue::closeGroup(int npu, Tick time) {
  std::vector<OpenGroup>& open = openGroups_[npu];
  for (size_t i = 0; i < open.size(); ++i) {
    if (open[i].time == time) {
      open[i] = open.back();
      open.pop_back();
      return;
    }
  }
}

bool EventQueue::onlyRunning() const {
  return running_ != nullptr && buckets_.size() == 1 && runningGroup_ + 1 == running_->groups.size() &&
         running_->entries[runningEntry_].next == kEnd;
}

void EventQueue::runNextTimestamp() {
  if (buckets_.empty()) return;
  now_ = buckets_.begin()->first;
  Bucket* bucket = buckets_.begin()->second;
  // Handlers may append entries and groups to this bucket: index, never hold references.
  running_ = bucket;
  for (size_t g = 0; g < bucket->groups.size(); ++g) {
    for (uint32_t e = bucket->groups[g].head; e != kEnd; e = bucket->entries[e].next) {
      Entry entry = bucket->entries[e];
      runningGroup_ = g;
      runningEntry_ = e;
      entry.handler->handleEvent(entry.arg);
    }
    if (bucket->groups[g].npu >= 0) closeGroup(bucket->groups[g].npu, now_);
  }
  running_ = nullptr;
  bucket->entries.clear();
  bucket->groups.clear();
  spareNodes_.push_back(buckets_.extract(buckets_.begin()));
}

}  // namespace engine
