// SPDX-License-Identifier: GPL-2.0
// cxmq_config_defaults / cxmq_config_check: null_blk's defaults and limits.
#include "test_util.h"

#include <cstring>

using namespace host;

namespace {

class Config : public HostTest {};

cxmq_dev_config defaults()
{
	cxmq_dev_config cfg;
	cxmq_config_defaults(&cfg);
	return cfg;
}

// Checks that cfg is refused with -EINVAL, left unchanged, with an error log naming `what`.
void expect_refused(cxmq_dev_config cfg, const char *what)
{
	SCOPED_TRACE(what);
	clear_logs();
	cxmq_dev_config copy = cfg;
	EXPECT_EQ(cxmq_config_check(&cfg), -CXMQ_EINVAL);
	EXPECT_EQ(memcmp(&copy, &cfg, sizeof(cfg)), 0) << "refused configuration was modified";
	EXPECT_TRUE(logged(CXMQ_LOG_ERR, what)) << "no error log naming " << what;
}

void expect_accepted(cxmq_dev_config cfg, const char *what)
{
	SCOPED_TRACE(what);
	cxmq_dev_config copy = cfg;
	EXPECT_EQ(cxmq_config_check(&cfg), 0);
	EXPECT_EQ(memcmp(&copy, &cfg, sizeof(cfg)), 0) << "accepted configuration was modified";
}

TEST_F(Config, DefaultsAreNullBlks)
{
	cxmq_dev_config cfg;
	memset(&cfg, 0xff, sizeof(cfg)); // every field must be set, whatever was there
	cxmq_config_defaults(&cfg);
	EXPECT_EQ(cfg.size_mb, 250u * 1024u); // gb=250
	EXPECT_EQ(cfg.size_mb, 256000u);
	EXPECT_EQ(cfg.bs, 512u);
	EXPECT_EQ(cfg.submit_queues, 1u);
	EXPECT_EQ(cfg.hw_queue_depth, 64u);
	EXPECT_EQ(cfg.irqmode, 0u);
	EXPECT_EQ(cfg.completion_nsec, 10000u);
	EXPECT_EQ(cfg.home_node, -1);
	EXPECT_EQ(cfg.memory_backed, 0u);
}

TEST_F(Config, DefaultsPassTheCheckUnchanged)
{
	expect_accepted(defaults(), "defaults");
	EXPECT_TRUE(logs().empty());
}

TEST_F(Config, RefusesSize)
{
	cxmq_dev_config cfg = defaults();
	cfg.size_mb = 0;
	expect_refused(cfg, "size");
	cfg.size_mb = uint64_t(CXMQ_MAX_GB) * 1024 + 1;
	expect_refused(cfg, "size");
	cfg.size_mb = ~0ull;
	expect_refused(cfg, "size");
	cfg.size_mb = 1;
	expect_accepted(cfg, "size 1 MiB");
	cfg.size_mb = uint64_t(CXMQ_MAX_GB) * 1024;
	expect_accepted(cfg, "size at the maximum");
}

TEST_F(Config, RefusesBlockSizes)
{
	for (uint32_t bs : {3000u, 256u, 8192u, 0u, 1u, 511u, 513u, 1000u, 4095u, 0x80000000u}) {
		cxmq_dev_config cfg = defaults();
		cfg.bs = bs;
		expect_refused(cfg, ("bs=" + std::to_string(bs)).c_str());
	}
	for (uint32_t bs : {512u, 1024u, 2048u, 4096u}) {
		cxmq_dev_config cfg = defaults();
		cfg.bs = bs;
		expect_accepted(cfg, ("bs=" + std::to_string(bs)).c_str());
	}
}

TEST_F(Config, RefusesQueueDepths)
{
	for (uint32_t d : {0u, 4097u, 8192u, ~0u}) {
		cxmq_dev_config cfg = defaults();
		cfg.hw_queue_depth = d;
		expect_refused(cfg, ("hw_queue_depth=" + std::to_string(d)).c_str());
	}
	for (uint32_t d : {1u, 2u, 63u, 4096u}) {
		cxmq_dev_config cfg = defaults();
		cfg.hw_queue_depth = d;
		expect_accepted(cfg, ("hw_queue_depth=" + std::to_string(d)).c_str());
	}
}

TEST_F(Config, RefusesIrqmode3)
{
	cxmq_dev_config cfg = defaults();
	cfg.irqmode = 3;
	expect_refused(cfg, "irqmode=3");
	cfg.irqmode = ~0u;
	expect_refused(cfg, "irqmode=");
}

TEST_F(Config, MemoryBackedIsZeroOrOne)
{
	cxmq_dev_config cfg = defaults();
	cfg.memory_backed = 2;
	expect_refused(cfg, "memory_backed=2");
	cfg.memory_backed = 1;
	expect_accepted(cfg, "memory_backed=1");
}

TEST_F(Config, IrqmodesAndCompletionNsec)
{
	cxmq_dev_config cfg = defaults();
	cfg.irqmode = 1;
	expect_accepted(cfg, "irqmode=1");
	cfg.irqmode = 2;
	expect_accepted(cfg, "irqmode=2");
	cfg.completion_nsec = 10000000000ull; // 10 s
	expect_accepted(cfg, "completion_nsec=10 s");
	cfg.completion_nsec = 10000000001ull;
	expect_refused(cfg, "completion_nsec=10000000001");
	cfg.completion_nsec = 0;
	expect_refused(cfg, "completion_nsec=0");
	cfg.irqmode = 1; // only irqmode 2 uses it
	expect_accepted(cfg, "irqmode=1 completion_nsec=0");
}

TEST_F(Config, RefusesZeroSubmitQueues)
{
	cxmq_dev_config cfg = defaults();
	cfg.submit_queues = 0;
	expect_refused(cfg, "submit_queues=0");
}

TEST_F(Config, CapsSubmitQueuesToPossibleCpusWithAWarning)
{
	// 8 CPU ids, 5 of them possible (a hole at 3, 4, 6): the cap counts possible CPUs.
	Topology t = simple_topology(8);
	for (uint32_t c : {3u, 4u, 6u})
		t.possible[c] = t.present[c] = t.online[c] = false;
	set_topology(t);

	cxmq_dev_config cfg = defaults();
	cfg.submit_queues = 5;
	expect_accepted(cfg, "submit_queues == possible CPUs");
	EXPECT_FALSE(logged(CXMQ_LOG_WARN, "submit_queues"));

	for (uint32_t k : {6u, 8u, 64u, ~0u}) {
		SCOPED_TRACE(k);
		clear_logs();
		cfg = defaults();
		cfg.submit_queues = k;
		cxmq_dev_config expect = cfg;
		expect.submit_queues = 5;
		EXPECT_EQ(cxmq_config_check(&cfg), 0);
		EXPECT_EQ(memcmp(&expect, &cfg, sizeof(cfg)), 0) << "only submit_queues may change";
		EXPECT_EQ(cfg.submit_queues, 5u);
		EXPECT_TRUE(logged(CXMQ_LOG_WARN, "submit_queues=" + std::to_string(k)));
		EXPECT_FALSE(logged(CXMQ_LOG_ERR, ""));
	}
}

TEST_F(Config, CapIsAppliedOnlyToValidConfigurations)
{
	// An invalid field elsewhere: refused, and submit_queues is not capped either.
	set_topology(simple_topology(2));
	cxmq_dev_config cfg = defaults();
	cfg.submit_queues = 16;
	cfg.bs = 3000;
	expect_refused(cfg, "bs=3000");
}

TEST_F(Config, CheckedConfigurationBuildsAQueue)
{
	set_topology(simple_topology(3));
	cxmq_dev_config cfg = defaults();
	cfg.submit_queues = 7;
	ASSERT_EQ(cxmq_config_check(&cfg), 0);
	int err = 1;
	cxmq_queue *q = cxmq_queue_create(&cfg, &err);
	ASSERT_NE(q, nullptr);
	EXPECT_EQ(err, 0);
	EXPECT_EQ(cxmq_queue_nr_hw_queues(q), 3u);
	cxmq_queue_destroy(q);
}

} // namespace
