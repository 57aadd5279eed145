// SPDX-License-Identifier: GPL-2.0
// A scheduler's sector-sorted tree of requests (the kernel's elv_rb_add/elv_rb_del/elv_rb_find
// over an rbtree): intrusive nodes ordered by start sector, equal sectors in insertion order,
// with successor and predecessor walks for batches in sector order and lookups for merges.
// Balanced as a treap: each node draws a random priority when it is inserted, and the tree is
// kept a heap by priority, which gives expected O(log n) depth with no colour fix-ups. Not
// thread-safe: the scheduler's lock guards it.
#pragma once

#include "util.h"

namespace cxmq {

struct SortNode {
	SortNode *left = nullptr, *right = nullptr, *parent = nullptr;
	u64 key = 0;  // start sector
	u64 seq = 0;  // insertion order among equal keys
	u32 prio = 0; // heap priority (random)
	bool linked = false;
};

class SortTree {
public:
	bool empty() const { return !root_; }
	u32 size() const { return size_; }

	void insert(SortNode *n, u64 key)
	{
		n->key = key;
		n->seq = ++seq_;
		n->prio = next_prio();
		n->left = n->right = nullptr;
		SortNode *p = nullptr, **link = &root_;
		while (*link) {
			p = *link;
			link = less(n, p) ? &p->left : &p->right;
		}
		n->parent = p;
		*link = n;
		n->linked = true;
		size_++;
		while (n->parent && n->parent->prio < n->prio)
			rotate_up(n);
	}

	void erase(SortNode *n)
	{
		// Rotate the node down below its higher-priority child until it is a leaf.
		while (n->left || n->right) {
			SortNode *c = !n->left ? n->right
				      : !n->right ? n->left
				      : n->left->prio > n->right->prio ? n->left : n->right;
			rotate_up(c);
		}
		replace_child(n->parent, n, nullptr);
		n->parent = nullptr;
		n->linked = false;
		size_--;
	}

	SortNode *first() const
	{
		SortNode *n = root_;
		while (n && n->left)
			n = n->left;
		return n;
	}

	static SortNode *next(SortNode *n)
	{
		if (n->right) {
			n = n->right;
			while (n->left)
				n = n->left;
			return n;
		}
		while (n->parent && n == n->parent->right)
			n = n->parent;
		return n->parent;
	}

	static SortNode *prev(SortNode *n)
	{
		if (n->left) {
			n = n->left;
			while (n->right)
				n = n->right;
			return n;
		}
		while (n->parent && n == n->parent->left)
			n = n->parent;
		return n->parent;
	}

	// The first node (in order) whose key is `key` (elv_rb_find), or nullptr.
	SortNode *find(u64 key) const
	{
		SortNode *n = root_, *found = nullptr;
		while (n) {
			if (key < n->key) {
				n = n->left;
			} else if (key > n->key) {
				n = n->right;
			} else {
				found = n; // an earlier equal one may sit on the left
				n = n->left;
			}
		}
		return found;
	}

	// The last node whose key is below `key`, or nullptr.
	SortNode *last_below(u64 key) const
	{
		SortNode *n = root_, *found = nullptr;
		while (n) {
			if (n->key < key) {
				found = n;
				n = n->right;
			} else {
				n = n->left;
			}
		}
		return found;
	}

private:
	static bool less(const SortNode *a, const SortNode *b)
	{
		return a->key < b->key || (a->key == b->key && a->seq < b->seq);
	}

	u32 next_prio()
	{
		// xorshift32: any fixed seed gives the expected depth; no randomness is needed.
		rng_ ^= rng_ << 13;
		rng_ ^= rng_ >> 17;
		rng_ ^= rng_ << 5;
		return rng_;
	}

	void replace_child(SortNode *p, SortNode *old, SortNode *n)
	{
		if (!p)
			root_ = n;
		else if (p->left == old)
			p->left = n;
		else
			p->right = n;
		if (n)
			n->parent = p;
	}

	// Lifts n above its parent, keeping the in-order sequence.
	void rotate_up(SortNode *n)
	{
		SortNode *p = n->parent, *g = p->parent;
		if (p->left == n) {
			p->left = n->right;
			if (n->right)
				n->right->parent = p;
			n->right = p;
		} else {
			p->right = n->left;
			if (n->left)
				n->left->parent = p;
			n->left = p;
		}
		p->parent = n;
		replace_child(g, p, n);
	}

	SortNode *root_ = nullptr;
	u64 seq_ = 0;
	u32 size_ = 0;
	u32 rng_ = 0x9e3779b9u;
};

} // namespace cxmq
