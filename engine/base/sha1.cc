#include "engine/base/sha1.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace torrenty::engine {

Sha1Digest Sha1(absl::Span<const uint8_t> data) {
  Sha1Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha1(), nullptr) != 1) abort();
  return out;
}

Sha1Hasher::~Sha1Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

Sha1Hasher& Sha1Hasher::operator=(Sha1Hasher&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
  }
  return *this;
}

void* Sha1Hasher::Ctx() {
  if (ctx_ == nullptr) {
    ctx_ = EVP_MD_CTX_new();
    if (ctx_ == nullptr ||
        EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha1(), nullptr) != 1)
      abort();
  }
  return ctx_;
}

void Sha1Hasher::Update(absl::Span<const uint8_t> data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(Ctx()), data.data(), data.size());
}

Sha1Digest Sha1Hasher::Finish() {
  Sha1Digest out{};
  unsigned int len = 0;
  auto* ctx = static_cast<EVP_MD_CTX*>(Ctx());
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  return out;
}

void Sha1Hasher::Reset() {
  if (ctx_ != nullptr) EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha1(), nullptr);
}

}  // namespace torrenty::engine
