// SPDX-License-Identifier: GPL-2.0
// The host's IPIs (os.h's cxmq_os_ipi_*, rq_affinity's moved completions): one thread per IPI
// object runs fn(arg, cpu) as that CPU (cxmq_os_this_cpu answers `cpu` there) for each send,
// merging sends to a CPU that is still pending, as a queued csd does. cxmq_os_cpus_share_cache:
// CPUs of one NUMA node of the host's topology share a cache.
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "host.h"

struct cxmq_os_ipi {
	void (*fn)(void *arg, cxmq_u32 cpu);
	void *arg;
	std::mutex m;
	std::condition_variable cv;
	std::set<cxmq_u32> pending;
	int running = 0;
	bool stop = false;
	std::thread thread;
};

namespace {
void ipi_thread(cxmq_os_ipi *ipi)
{
	std::unique_lock<std::mutex> g(ipi->m);
	for (;;) {
		ipi->cv.wait(g, [&] { return ipi->stop || !ipi->pending.empty(); });
		if (ipi->pending.empty())
			return; // stop, and nothing left
		const cxmq_u32 cpu = *ipi->pending.begin();
		ipi->pending.erase(ipi->pending.begin());
		ipi->running++;
		g.unlock();
		host::set_this_cpu(cpu);
		ipi->fn(ipi->arg, cpu);
		g.lock();
		ipi->running--;
		ipi->cv.notify_all();
	}
}
} // namespace

extern "C" {

int cxmq_os_cpus_share_cache(cxmq_u32 a, cxmq_u32 b)
{
	const host::Topology &t = host::topology();
	return a == b || (a < t.nr_cpu_ids && b < t.nr_cpu_ids && t.node[a] == t.node[b]);
}

struct cxmq_os_ipi *cxmq_os_ipi_create(void (*fn)(void *arg, cxmq_u32 cpu), void *arg)
{
	auto *ipi = new cxmq_os_ipi;
	ipi->fn = fn;
	ipi->arg = arg;
	ipi->thread = std::thread(ipi_thread, ipi);
	return ipi;
}

void cxmq_os_ipi_destroy(struct cxmq_os_ipi *ipi)
{
	if (!ipi)
		return;
	{
		std::lock_guard<std::mutex> g(ipi->m);
		ipi->stop = true;
	}
	ipi->cv.notify_all();
	ipi->thread.join(); // runs what was sent first
	delete ipi;
}

void cxmq_os_ipi_send(struct cxmq_os_ipi *ipi, cxmq_u32 cpu)
{
	{
		std::lock_guard<std::mutex> g(ipi->m);
		ipi->pending.insert(cpu);
	}
	ipi->cv.notify_all();
}

} // extern "C"
