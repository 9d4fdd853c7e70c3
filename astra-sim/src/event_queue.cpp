#include "event_queue.h"

namespace engine {

EventQueue::~EventQueue() {
  for (auto& entry : buckets_) delete entry.second;
  for (Bucket* bucket : spareBuckets_) delete bucket;
}

EventQueue::Bucket* EventQueue::bucketAt(Tick time) {
  auto it = buckets_.lower_bound(time);
  if (it != buckets_.end() && it->first == time) return it->second;
  Bucket* bucket;
  if (spareBuckets_.empty()) {
    bucket = new Bucket();
  } else {
    bucket = spareBuckets_.back();
    spareBuckets_.pop_back();
  }
  buckets_.emplace_hint(it, time, bucket);
  return bucket;
}

uint32_t EventQueue::addEntry(Bucket* bucket, EventHandler* handler, uint64_t arg) {
  bucket->entries.push_back(Entry{handler, arg, kEnd});
  return static_cast<uint32_t>(bucket->entries.size() - 1);
}

void EventQueue::schedule(Tick delay, EventHandler* handler, uint64_t arg) {
  Bucket* bucket = bucketAt(now_ + delay);
  uint32_t entry = addEntry(bucket, handler, arg);
  bucket->groups.push_back(Group{entry, entry, -1});
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
  uint32_t entry = addEntry(bucket, handler, arg);
  bucket->groups.push_back(Group{entry, entry, npu});
  openGroups_[npu].push_back(OpenGroup{time, bucket, static_cast<uint32_t>(bucket->groups.size() - 1)});
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

void EventQueue::runNextTimestamp() {
  if (buckets_.empty()) return;
  now_ = buckets_.begin()->first;
  Bucket* bucket = buckets_.begin()->second;
  // Handlers may append entries and groups to this bucket: index, never hold references.
  for (size_t g = 0; g < bucket->groups.size(); ++g) {
    for (uint32_t e = bucket->groups[g].head; e != kEnd; e = bucket->entries[e].next) {
      Entry entry = bucket->entries[e];
      entry.handler->handleEvent(entry.arg);
    }
    if (bucket->groups[g].npu >= 0) closeGroup(bucket->groups[g].npu, now_);
  }
  buckets_.erase(buckets_.begin());
  bucket->entries.clear();
  bucket->groups.clear();
  spareBuckets_.push_back(bucket);
}

}  // namespace engine
