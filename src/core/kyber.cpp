// SPDX-License-Identifier: GPL-2.0
#include "kyber.h"
#include "queue.h"
#include "text.h"

namespace cxmq {

namespace {

enum Domain : u32 { kReadDom, kWriteDom, kDiscardDom, kOtherDom, kDomains };
// Domains with a latency target (the kernel's KYBER_OTHER bound).
constexpr u32 kTimedDomains = kOtherDom;
const char *const kDomainNames[kDomains] = {"read", "write", "discard", "other"};
constexpr u32 kDomainDepth[kDomains] = {256, 128, 64, 16};
constexpr u32 kBatchSize[kDomains] = {16, 8, 1, 1};
constexpr u64 kMsec = 1000000ull;
constexpr u64 kDefaultTarget[kTimedDomains] = {2 * kMsec, 10 * kMsec, 5000 * kMsec};

// Histogram buckets: each a quarter of the target wide; the first four are within it.
constexpr u32 kLatencyShift = 2;
constexpr u32 kGoodBuckets = 1u << kLatencyShift;
constexpr u32 kLatencyBuckets = 2u << kLatencyShift;
enum LatType : u32 { kTotal, kIo, kLatTypes };

constexpr u32 kAsyncPercent = 75;
constexpr u64 kWindowNs = 100 * kMsec;             // the timer's HZ / 10
constexpr u64 kPercentileTimeoutNs = 1000 * kMsec; // HZ
constexpr u32 kMinSamples = 500;

// Request::elv_priv: the request holds a token of its domain.
constexpr u32 kTokenHeld = 1;

// kyber_sched_domain
Domain domain_of(u16 op)
{
	switch (op) {
	case CXMQ_OP_READ:
		return kReadDom;
	case CXMQ_OP_WRITE:
		return kWriteDom;
	case CXMQ_OP_DISCARD:
		return kDiscardDom;
	default:
		return kOtherDom;
	}
}

// op_is_sync: reads, and whatever someone waits for.
bool is_sync(const Bio &b)
{
	return b.op == CXMQ_OP_READ || (b.flags & (CXMQ_BIO_SYNC | CXMQ_BIO_FUA | CXMQ_BIO_PREFLUSH));
}

// A domain's tokens (its sbitmap_queue): at most `depth` of its requests out at once. A resize
// below the number in use takes effect as they complete.
struct alignas(kCacheLine) TokenPool {
	u32 depth;      // atomic
	u32 used;       // atomic
	u32 nr_waiting; // atomic: hardware queues waiting for a token (KyberHctx::waiting)
};

// One hardware queue's requests, by domain, and its place in the round.
struct alignas(kCacheLine) KyberHctx {
	SpinLock lock;
	List rqs[kDomains]; // under lock, oldest first (Request::node)
	u32 cur_domain = 0; // under lock
	u32 batching = 0;   // under lock
	u32 nr_queued = 0;  // atomic: has_work reads it without the lock
	u32 waiting = 0;    // atomic: bit d: waits for a token of domain d
};

// One CPU's completion latency histograms (kyber_cpu_latency).
struct alignas(kCacheLine) CpuLatency {
	u32 buckets[kTimedDomains][kLatTypes][kLatencyBuckets]; // atomic
};

enum Attr : u32 { kAttrReadLat, kAttrWriteLat, kNrAttrs };
const ElvAttr kAttrs[kNrAttrs] = {{"read_lat_nsec"}, {"write_lat_nsec"}};

class Kyber final : public Elevator {
public:
	explicit Kyber(Queue &q) : q_(q) {}
	bool init();
	~Kyber() { cxmq_os_free(cpu_latency_); }

	int init_hctx(HwQueue &h) override;
	void exit_hctx(HwQueue &h) override;
	u32 shallow_depth(HwQueue &h, const Bio &b) override;
	bool bio_merge(HwQueue &h, const Bio &b, const cxmq_limits &lim) override;
	void prepare_request(Request &rq) override;
	void insert_requests(HwQueue &h, Request **rqs, u32 n) override;
	Request *dispatch_request(HwQueue &h) override;
	bool has_work(HwQueue &h) override { return load_relaxed(kh(h).nr_queued) != 0; }
	void completed_request(Request &rq, u64 now_ns) override;
	void finish_request(Request &rq) override;
	void depth_updated(u32) override {}
	int show(u32 attr, char *buf, size_t size) const override;
	int store(u32 attr, const char *buf) override;
	void show_stats(TextOut &o) const override;
	void release() override { destroy(this); }

private:
	static KyberHctx &kh(HwQueue &h) { return *static_cast<KyberHctx *>(h.sched_data); }
	bool get_token(Domain d);
	bool get_domain_token(KyberHctx &k, Domain d);
	void put_token(Domain d);
	Request *dispatch_cur_domain(KyberHctx &k);
	void add_sample(CpuLatency &c, Domain d, LatType t, u64 latency);
	int percentile(Domain d, LatType t, u32 pct, u64 now);
	void resize_domain(Domain d, u32 depth);
	void adjust_depths(u64 now);

	Queue &q_;
	TokenPool tokens_[kDomains];
	CpuLatency *cpu_latency_ = nullptr; // one per CPU id
	u64 targets_[kTimedDomains];        // atomic: read_lat_nsec, write_lat_nsec, discard's
	u64 window_end_ = 0;                // atomic: when the current window ends; 0: none open
	SpinLock window_lock_;              // the evaluation of a window, and what it keeps:
	u32 latency_buckets_[kTimedDomains][kLatTypes][kLatencyBuckets] = {};
	u64 latency_timeout_[kTimedDomains] = {};
	s32 domain_p99_[kTimedDomains];
};

bool Kyber::init()
{
	const int node = q_.config().home_node;
	cpu_latency_ = static_cast<CpuLatency *>(
		cxmq_os_zalloc(sizeof(CpuLatency) * q_.nr_cpus(), node));
	if (!cpu_latency_ || !window_lock_.init(node))
		return false;
	for (u32 d = 0; d < kDomains; d++)
		tokens_[d] = TokenPool{kDomainDepth[d], 0, 0};
	for (u32 d = 0; d < kTimedDomains; d++) {
		targets_[d] = kDefaultTarget[d];
		domain_p99_[d] = -1;
	}
	return true;
}

int Kyber::init_hctx(HwQueue &h)
{
	return elv_make_hctx_data<KyberHctx>(h.node, &h.sched_data);
}

void Kyber::exit_hctx(HwQueue &h)
{
	KyberHctx *k = static_cast<KyberHctx *>(h.sched_data);
	if (!k)
		return;
	CXMQ_WARN_ON(load_relaxed(k->nr_queued) != 0);
	h.sched_data = nullptr;
	destroy(k);
}

// kyber_limit_depth: asynchronous requests may use KYBER_ASYNC_PERCENT of each bitmap word.
u32 Kyber::shallow_depth(HwQueue &h, const Bio &b)
{
	if (is_sync(b))
		return 0;
	return max(h.tags->bits_per_word() * kAsyncPercent / 100, 1u);
}

// kyber_bio_merge: into a request of the bio's domain that waits on its hardware queue.
bool Kyber::bio_merge(HwQueue &h, const Bio &b, const cxmq_limits &lim)
{
	KyberHctx &k = kh(h);
	LockGuard g(k.lock);
	Request *rq = list_merge(k.rqs[domain_of(b.op)], b, lim, MergeSite::kSched);
	if (!rq)
		return false;
	cxmq_os_bio_merged(b.bio, b.cookie, rq->cookie);
	return true;
}

void Kyber::prepare_request(Request &rq)
{
	rq.elv_priv = 0;
	rq.start_ns = cxmq_os_now_ns();
}

void Kyber::insert_requests(HwQueue &h, Request **rqs, u32 n)
{
	KyberHctx &k = kh(h);
	LockGuard g(k.lock);
	for (u32 i = 0; i < n; i++)
		k.rqs[domain_of(rqs[i]->op)].push_back(&rqs[i]->node);
	store_relaxed(k.nr_queued, k.nr_queued + n);
}

bool Kyber::get_token(Domain d)
{
	TokenPool &p = tokens_[d];
	u32 used = __atomic_load_n(&p.used, __ATOMIC_SEQ_CST);
	do {
		if (used >= load_relaxed(p.depth))
			return false;
	} while (!__atomic_compare_exchange_n(&p.used, &used, used + 1, true, __ATOMIC_SEQ_CST,
					      __ATOMIC_SEQ_CST));
	return true;
}

// kyber_get_domain_token: a token, or the hardware queue waits for one (put_token runs it).
// Against put_token (its release of a token, then its look at nr_waiting): the waiter is
// counted and marked before it tries again, so a token freed before the mark is seen here.
bool Kyber::get_domain_token(KyberHctx &k, Domain d)
{
	if (get_token(d))
		return true;
	const u32 bit = 1u << d;
	if (!(load_relaxed(k.waiting) & bit)) {
		__atomic_add_fetch(&tokens_[d].nr_waiting, 1u, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&k.waiting, bit, __ATOMIC_SEQ_CST);
	}
	if (!get_token(d))
		return false;
	if (__atomic_fetch_and(&k.waiting, ~bit, __ATOMIC_SEQ_CST) & bit)
		__atomic_sub_fetch(&tokens_[d].nr_waiting, 1u, __ATOMIC_SEQ_CST);
	return true;
}

// sbitmap_queue_clear and kyber_domain_wake: the token goes back, and every hardware queue
// that waits for one of its domain runs (from a worker).
void Kyber::put_token(Domain d)
{
	TokenPool &p = tokens_[d];
	__atomic_sub_fetch(&p.used, 1u, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&p.nr_waiting, __ATOMIC_SEQ_CST))
		return;
	const u32 bit = 1u << d;
	for (u32 i = 0; i < q_.nr_hw_queues(); i++) {
		HwQueue &h = q_.hctx(i);
		if (__atomic_fetch_and(&kh(h).waiting, ~bit, __ATOMIC_SEQ_CST) & bit) {
			__atomic_sub_fetch(&p.nr_waiting, 1u, __ATOMIC_SEQ_CST);
			q_.run_hw_queue_async(h, 0);
		}
	}
}

// kyber_dispatch_cur_domain: the oldest request of the current domain, if it gets a token.
Request *Kyber::dispatch_cur_domain(KyberHctx &k)
{
	const Domain d = Domain(k.cur_domain);
	ListNode *n = k.rqs[d].front();
	if (!n || !get_domain_token(k, d))
		return nullptr;
	Request *rq = Request::from_node(n);
	List::unlink(n);
	store_relaxed(k.nr_queued, k.nr_queued - 1);
	rq->elv_priv |= kTokenHeld;
	k.batching++;
	return rq;
}

// kyber_dispatch_request: the batch of the current domain goes on while it is entitled to,
// has requests and tokens; then the next domain with both starts a new batch.
Request *Kyber::dispatch_request(HwQueue &h)
{
	KyberHctx &k = kh(h);
	Request *rq = nullptr;
	{
		LockGuard g(k.lock);
		if (k.batching < kBatchSize[k.cur_domain])
			rq = dispatch_cur_domain(k);
		if (!rq) {
			k.batching = 0;
			for (u32 i = 0; i < kDomains && !rq; i++) {
				k.cur_domain = k.cur_domain == kDomains - 1 ? 0 : k.cur_domain + 1;
				rq = dispatch_cur_domain(k);
			}
		}
	}
	if (rq)
		rq->io_start_ns = cxmq_os_now_ns();
	return rq;
}

void Kyber::finish_request(Request &rq)
{
	if (!(rq.elv_priv & kTokenHeld))
		return;
	rq.elv_priv &= ~kTokenHeld;
	put_token(domain_of(rq.op));
}

// add_latency_sample: the bucket of `latency`, in quarters of the domain's target.
void Kyber::add_sample(CpuLatency &c, Domain d, LatType t, u64 latency)
{
	u32 bucket = 0;
	if (latency > 0) {
		const u64 divisor = max(load_relaxed(targets_[d]) >> kLatencyShift, u64(1));
		bucket = u32(min((latency - 1) / divisor, u64(kLatencyBuckets - 1)));
	}
	add_relaxed(c.buckets[d][t][bucket], 1u);
}

// kyber_completed_request: the request's total and IO latency into this CPU's histograms; the
// first completion opens a window, the first after it ends evaluates it (kyber_timer_fn).
void Kyber::completed_request(Request &rq, u64 now)
{
	const Domain d = domain_of(rq.op);
	if (d == kOtherDom)
		return;
	CpuLatency &c = cpu_latency_[cxmq_os_this_cpu()];
	add_sample(c, d, kTotal, now - rq.start_ns);
	add_sample(c, d, kIo, now - rq.io_start_ns);
	u64 end = load_relaxed(window_end_);
	if (!end) {
		__atomic_compare_exchange_n(&window_end_, &end, now + kWindowNs, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return;
	}
	if (now < end || !__atomic_compare_exchange_n(&window_end_, &end, u64(0), false,
						      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	LockGuard g(window_lock_);
	adjust_depths(now);
}

// calculate_percentile: the bucket that holds the pct-th percentile of domain d's samples of
// type t, once there are kMinSamples of them or a second has passed since the first; -1 before
// (the samples are kept), or without samples. The samples are consumed.
int Kyber::percentile(Domain d, LatType t, u32 pct, u64 now)
{
	u32 *buckets = latency_buckets_[d][t];
	u32 samples = 0;
	for (u32 b = 0; b < kLatencyBuckets; b++)
		samples += buckets[b];
	if (!samples)
		return -1;
	if (!latency_timeout_[d])
		latency_timeout_[d] = max(now + kPercentileTimeoutNs, u64(1));
	if (samples < kMinSamples && now < latency_timeout_[d])
		return -1;
	latency_timeout_[d] = 0;
	u32 want = (samples * pct + 99) / 100;
	u32 b = 0;
	for (; b < kLatencyBuckets - 1; b++) {
		if (buckets[b] >= want)
			break;
		want -= buckets[b];
	}
	for (u32 i = 0; i < kLatencyBuckets; i++)
		buckets[i] = 0;
	return int(b);
}

// kyber_resize_domain
void Kyber::resize_domain(Domain d, u32 depth)
{
	store_relaxed(tokens_[d].depth, min(max(depth, 1u), kDomainDepth[d]));
}

// kyber_timer_fn: every CPU's histograms are summed; congestion is some domain's IO p90 over
// target; then each domain with a total p99 (or one remembered from a window without
// congestion) is scaled by (p99 + 1) / 4 of its tokens when congested or over its target.
void Kyber::adjust_depths(u64 now)
{
	for (u32 cpu = 0; cpu < q_.nr_cpus(); cpu++)
		for (u32 d = 0; d < kTimedDomains; d++)
			for (u32 t = 0; t < kLatTypes; t++)
				for (u32 b = 0; b < kLatencyBuckets; b++)
					latency_buckets_[d][t][b] += __atomic_exchange_n(
						&cpu_latency_[cpu].buckets[d][t][b], 0u,
						__ATOMIC_RELAXED);
	bool bad = false;
	for (u32 d = 0; d < kTimedDomains; d++)
		if (percentile(Domain(d), kIo, 90, now) >= int(kGoodBuckets))
			bad = true;
	for (u32 d = 0; d < kTimedDomains; d++) {
		int p99 = percentile(Domain(d), kTotal, 99, now);
		if (bad) {
			if (p99 < 0)
				p99 = domain_p99_[d];
			domain_p99_[d] = -1;
		} else if (p99 >= 0) {
			domain_p99_[d] = p99;
		}
		if (p99 < 0)
			continue;
		if (bad || p99 >= int(kGoodBuckets)) {
			const u32 depth = load_relaxed(tokens_[d].depth);
			resize_domain(Domain(d), (depth * u32(p99 + 1)) >> kLatencyShift);
		}
	}
}

int Kyber::show(u32 attr, char *buf, size_t size) const
{
	if (attr >= kNrAttrs)
		return -CXMQ_EINVAL;
	return cxmq_os_snprintf(buf, size, "%llu\n", ull(load_relaxed(targets_[attr])));
}

int Kyber::store(u32 attr, const char *buf)
{
	if (attr >= kNrAttrs)
		return -CXMQ_EINVAL;
	u64 v;
	int ret = elv_parse_u64("kyber", kAttrs[attr].name, buf, "a number of nanoseconds", &v);
	if (ret)
		return ret;
	store_relaxed(targets_[attr], v);
	return 0;
}

// " read_tokens=used/depth ..." for each domain (the kernel's debugfs <domain>_tokens).
void Kyber::show_stats(TextOut &o) const
{
	for (u32 d = 0; d < kDomains; d++)
		o.put(" %s_tokens=%u/%u", kDomainNames[d], load_relaxed(tokens_[d].used),
		      load_relaxed(tokens_[d].depth));
}

Elevator *create_kyber(Queue &q, int *err)
{
	Kyber *k = make<Kyber>(q.config().home_node, q);
	if (k && !k->init()) {
		destroy(k);
		k = nullptr;
	}
	*err = k ? 0 : -CXMQ_ENOMEM;
	return k;
}

} // namespace

const ElevatorType kKyberType = {"kyber", nullptr, create_kyber, kAttrs, kNrAttrs, true};

} // namespace cxmq
