#include "core/unique_fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>

#include <utility>

#include <gtest/gtest.h>

namespace strata {
namespace {

// Whether fd is an open descriptor of this process.
bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

int NewFd() { return eventfd(0, EFD_CLOEXEC); }

TEST(UniqueFd, ClosesWhenItGoesOutOfScope) {
  int raw;
  {
    UniqueFd fd(NewFd());
    raw = fd.get();
    ASSERT_TRUE(fd.valid());
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, NegativeHoldsNothing) {
  UniqueFd failed(open("/nonexistent/strata", O_RDONLY | O_CLOEXEC));
  EXPECT_FALSE(failed.valid());
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.get(), -1);
  UniqueFd empty;
  EXPECT_EQ(empty.get(), -1);
}

TEST(UniqueFd, MoveTransfersOwnershipOnce) {
  UniqueFd a(NewFd());
  const int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_EQ(b.get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
  c = UniqueFd();
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, MoveAssignmentClosesWhatItHeld) {
  UniqueFd a(NewFd()), b(NewFd());
  const int old = a.get(), kept = b.get();
  a = std::move(b);
  EXPECT_FALSE(IsOpen(old));
  EXPECT_EQ(a.get(), kept);
  EXPECT_TRUE(IsOpen(kept));
}

TEST(UniqueFd, SelfMoveKeepsTheDescriptor) {
  UniqueFd a(NewFd());
  const int raw = a.get();
  UniqueFd& same = a;
  a = std::move(same);
  EXPECT_EQ(a.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(UniqueFd, ReleaseGivesUpWithoutClosing) {
  UniqueFd a(NewFd());
  const int raw = a.release();
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(IsOpen(raw));
  close(raw);
}

TEST(UniqueFd, ResetClosesAndTakesTheNewOne) {
  UniqueFd a(NewFd());
  const int old = a.get();
  const int next = NewFd();
  a.reset(next);
  EXPECT_FALSE(IsOpen(old));
  EXPECT_EQ(a.get(), next);
  a.reset();
  EXPECT_FALSE(IsOpen(next));
  EXPECT_FALSE(a.valid());
}

}  // namespace
}  // namespace strata
