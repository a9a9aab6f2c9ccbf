// LRU over an intrusive list; pinned entries stay in the list and are skipped by eviction.
#include "io/disk/file_pool.h"

#include <unistd.h>

#include <utility>
#include <vector>

namespace torrenty::io {

FilePool::FilePool(size_t cap) : cap_(cap == 0 ? 1 : cap) {}

FilePool::~FilePool() {
  for (auto& [key, e] : map_) {
    if (e->fd >= 0) close(e->fd);
  }
  if (open_files_ != nullptr) open_files_->Add(-static_cast<int64_t>(map_.size()));
}

absl::StatusOr<FilePool::Entry*> FilePool::Acquire(const void* owner, uint32_t file, bool direct,
                                                   OpenFn open) {
  const Key key{owner, file, direct};
  if (auto it = map_.find(key); it != map_.end()) {
    Entry* e = it->second.get();
    Unlink(e);
    PushFront(e);
    ++e->pins;
    return e;
  }
  while (map_.size() >= cap_ && EvictOne()) {
  }
  if (map_.size() >= cap_) {
    return absl::ResourceExhaustedError("every open file is in use by a disk operation");
  }
  absl::StatusOr<int> fd = open();
  if (!fd.ok()) return fd.status();
  auto owned = std::make_unique<Entry>();
  Entry* e = owned.get();
  e->key = key;
  e->fd = *fd;
  e->pins = 1;
  map_.emplace(key, std::move(owned));
  PushFront(e);
  if (open_files_ != nullptr) open_files_->Add(1);
  return e;
}

void FilePool::Release(Entry* e) {
  if (--e->pins > 0) return;
  // One descriptor became evictable: room for one waiter.
  if (Waiter* w = waiters_; w != nullptr) {
    waiters_ = w->next;
    if (waiters_ == nullptr) waiters_tail_ = nullptr;
    w->next = nullptr;
    w->queued = false;
    w->fn(w->ctx);
  }
}

void FilePool::AddWaiter(Waiter* w) {
  if (w->queued) return;
  w->queued = true;
  w->next = nullptr;
  (waiters_tail_ != nullptr ? waiters_tail_->next : waiters_) = w;
  waiters_tail_ = w;
}

void FilePool::RemoveWaiter(Waiter* w) {
  if (!w->queued) return;
  Waiter* prev = nullptr;
  for (Waiter* it = waiters_; it != nullptr; prev = it, it = it->next) {
    if (it != w) continue;
    (prev != nullptr ? prev->next : waiters_) = w->next;
    if (waiters_tail_ == w) waiters_tail_ = prev;
    break;
  }
  w->next = nullptr;
  w->queued = false;
}

void FilePool::CloseOwner(const void* owner) {
  std::vector<Entry*> doomed;
  for (auto& [key, e] : map_) {
    if (key.owner == owner) doomed.push_back(e.get());
  }
  for (Entry* e : doomed) Close(e);
}

void FilePool::Unlink(Entry* e) {
  (e->prev != nullptr ? e->prev->next : head_) = e->next;
  (e->next != nullptr ? e->next->prev : tail_) = e->prev;
  e->prev = e->next = nullptr;
}

void FilePool::PushFront(Entry* e) {
  e->prev = nullptr;
  e->next = head_;
  if (head_ != nullptr) head_->prev = e;
  head_ = e;
  if (tail_ == nullptr) tail_ = e;
}

void FilePool::Close(Entry* e) {
  Unlink(e);
  if (e->fd >= 0) close(e->fd);
  if (open_files_ != nullptr) open_files_->Add(-1);
  const Key key = e->key;  // erase destroys e
  map_.erase(key);
}

bool FilePool::EvictOne() {
  for (Entry* e = tail_; e != nullptr; e = e->prev) {
    if (e->pins > 0) continue;
    Close(e);
    ++evictions_;
    if (evictions_counter_ != nullptr) evictions_counter_->Add();
    return true;
  }
  return false;
}

}  // namespace torrenty::io
