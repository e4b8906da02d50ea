package main

// franz-go (github.com/twmb/franz-go): the kgo producer and consumer, its group consumer
// (cooperative-sticky), transactions, and the kadm admin client.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func franzScenarios() []scenario {
	return []scenario{
		{"franz_produce_consume", true, 120 * time.Second, franzProduceConsume},
		{"franz_compression", false, 120 * time.Second, franzCompression},
		{"franz_group_cooperative", true, 180 * time.Second, franzGroup},
		{"franz_transactions", false, 120 * time.Second, franzTransactions},
		{"franz_admin", false, 120 * time.Second, franzAdmin},
	}
}

func franzClient(e *env, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.brokers()...), kgo.MetadataMinAge(250 * time.Millisecond)}, opts...)...)
}

func franzCreate(ctx context.Context, e *env, topic string, partitions int32, configs map[string]*string) error {
	cl, err := franzClient(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// franzReadAll reads every partition of topic from the start until `expected` records
// came, then one more short poll so that extra records would show up too.
func franzReadAll(ctx context.Context, e *env, topic string, expected int, opts ...kgo.Opt) ([]*kgo.Record, error) {
	admin, err := franzClient(e)
	if err != nil {
		return nil, err
	}
	details, err := kadm.NewClient(admin).ListTopics(ctx, topic)
	admin.Close()
	if err != nil {
		return nil, err
	}
	parts := map[int32]kgo.Offset{}
	for p := range details[topic].Partitions {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := franzClient(e, append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	extra := false
	for time.Now().Before(deadline) {
		wait := time.Second
		if len(out) >= expected {
			if extra {
				break
			}
			extra, wait = true, 500*time.Millisecond
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out, nil
}

// franzProduceConsume: 3,000 keyed records with headers over 3 partitions with kgo's
// defaults (idempotent, acks=all), offsets dense per partition, read back as sent.
func franzProduceConsume(ctx context.Context, e *env) error {
	topic := e.name("t")
	if err := franzCreate(ctx, e, topic, 3, nil); err != nil {
		return err
	}
	cl, err := franzClient(e, kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	const n = 3000
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{
			Key:     []byte("key-" + strconv.Itoa(i%61)),
			Value:   []byte("value-" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
		})
	}
	results := cl.ProduceSync(ctx, recs...)
	if err := results.FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	offsets := map[int32][]int64{}
	partitionOf := map[string]int32{}
	for _, r := range results {
		offsets[r.Record.Partition] = append(offsets[r.Record.Partition], r.Record.Offset)
		k := string(r.Record.Key)
		if p, ok := partitionOf[k]; ok && p != r.Record.Partition {
			return fmt.Errorf("key %s on partitions %d and %d", k, p, r.Record.Partition)
		}
		partitionOf[k] = r.Record.Partition
	}
	for p, os := range offsets {
		sort.Slice(os, func(i, j int) bool { return os[i] < os[j] })
		for i, o := range os {
			if o != int64(i) {
				return fmt.Errorf("partition %d: offset %d at position %d", p, o, i)
			}
		}
	}
	got, err := franzReadAll(ctx, e, topic, n)
	if err != nil {
		return err
	}
	if err := check(len(got) == n, "read %d records, want %d", len(got), n); err != nil {
		return err
	}
	seen := make([]bool, n)
	for _, r := range got {
		if len(r.Headers) != 1 || r.Headers[0].Key != "seq" {
			return fmt.Errorf("headers lost: %v", r.Headers)
		}
		i, _ := strconv.Atoi(string(r.Headers[0].Value))
		if seen[i] {
			return fmt.Errorf("record %d read twice", i)
		}
		seen[i] = true
		if string(r.Value) != "value-"+strconv.Itoa(i) || string(r.Key) != "key-"+strconv.Itoa(i%61) {
			return fmt.Errorf("record %d came back as %q=%q", i, r.Key, r.Value)
		}
	}
	return nil
}

// franzCompression: each codec kgo offers, read back intact.
func franzCompression(ctx context.Context, e *env) error {
	codecs := map[string]kgo.CompressionCodec{
		"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := e.name(name)
		if err := franzCreate(ctx, e, topic, 1, nil); err != nil {
			return err
		}
		cl, err := franzClient(e, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(20*time.Millisecond))
		if err != nil {
			return err
		}
		const n = 1000
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, kgo.StringRecord(fmt.Sprintf("%s compressible payload %d %s", name, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))
		}
		err = cl.ProduceSync(ctx, recs...).FirstErr()
		cl.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		got, err := franzReadAll(ctx, e, topic, n)
		if err != nil {
			return err
		}
		if len(got) != n {
			return fmt.Errorf("%s: read %d of %d", name, len(got), n)
		}
		for i, r := range got {
			if want := fmt.Sprintf("%s compressible payload %d %s", name, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); string(r.Value) != want || r.Offset != int64(i) {
				return fmt.Errorf("%s: record %d is %q at %d", name, i, r.Value, r.Offset)
			}
		}
	}
	return nil
}

// franzGroup: one member alone, then a second joins (cooperative-sticky); each commits what
// it processed before the group moves on (BlockRebalanceOnPoll), so every record is
// processed once, the partitions end split evenly, and the committed offsets are the ends.
func franzGroup(ctx context.Context, e *env) error {
	topic, group := e.name("t"), e.name("g")
	const partitions, per = 6, 100
	if err := franzCreate(ctx, e, topic, partitions, nil); err != nil {
		return err
	}
	prod, err := franzClient(e, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < per; i++ {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	err = prod.ProduceSync(ctx, recs...).FirstErr()
	prod.Close()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	processed := map[string]int{}
	// Each member's partitions, kept by the rebalance callbacks.
	owned := map[*int]map[int32]bool{}
	member := func(id *int) (*kgo.Client, error) {
		mu.Lock()
		owned[id] = map[int32]bool{}
		mu.Unlock()
		track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range ps[topic] {
					if add {
						owned[id][p] = true
					} else {
						delete(owned[id], p)
					}
				}
			}
		}
		return franzClient(e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxPartitionBytes(2000),
			kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)),
			kgo.OnPartitionsLost(track(false)))
	}
	ownedBy := func(id *int) int {
		mu.Lock()
		defer mu.Unlock()
		return len(owned[id])
	}
	poll := func(cl *kgo.Client) error {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		defer cl.AllowRebalance()
		fs := cl.PollRecords(pctx, 20)
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		mu.Lock()
		fs.EachRecord(func(r *kgo.Record) { processed[fmt.Sprintf("%d@%d", r.Partition, r.Offset)]++ })
		mu.Unlock()
		return cl.CommitUncommittedOffsets(ctx)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(processed)
	}
	idA, idB := new(int), new(int)
	a, err := member(idA)
	if err != nil {
		return err
	}
	defer a.Close()
	for count() < partitions*per/3 {
		if err := poll(a); err != nil {
			return err
		}
	}
	b, err := member(idB)
	if err != nil {
		return err
	}
	defer b.Close()
	deadline := time.Now().Add(90 * time.Second)
	for (count() < partitions*per || ownedBy(idA) != partitions/2 || ownedBy(idB) != partitions/2) && time.Now().Before(deadline) {
		if err := first(poll(a), poll(b)); err != nil {
			return err
		}
	}
	if err := check(count() == partitions*per, "processed %d of %d", count(), partitions*per); err != nil {
		return err
	}
	for k, n := range processed {
		if n != 1 {
			return fmt.Errorf("record %s processed %d times", k, n)
		}
	}
	if err := check(ownedBy(idA) == partitions/2 && ownedBy(idB) == partitions/2, "shares %d and %d", ownedBy(idA), ownedBy(idB)); err != nil {
		return err
	}
	adm, err := franzClient(e)
	if err != nil {
		return err
	}
	defer adm.Close()
	offsets, err := kadm.NewClient(adm).FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	n := 0
	var bad error
	offsets.Each(func(o kadm.OffsetResponse) {
		n++
		if o.At != per && bad == nil {
			bad = fmt.Errorf("committed %d on partition %d, want %d", o.At, o.Partition, per)
		}
	})
	return first(bad, check(n == partitions, "%d committed partitions, want %d", n, partitions))
}

// franzTransactions: commit, abort, commit; a read_committed reader sees only committed
// records, a read_uncommitted one sees all; a second client with the same transactional id
// fences the first.
func franzTransactions(ctx context.Context, e *env) error {
	topic, txnID := e.name("t"), e.name("txn")
	if err := franzCreate(ctx, e, topic, 2, nil); err != nil {
		return err
	}
	cl, err := franzClient(e, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txnID), kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	for round, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, kgo.StringRecord(fmt.Sprintf("round%d-%d", round, i)))
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			return fmt.Errorf("end round %d: %w", round, err)
		}
	}
	committed, err := franzReadAll(ctx, e, topic, 20, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	if err := check(len(committed) == 20, "read_committed read %d records, want 20", len(committed)); err != nil {
		return err
	}
	for _, r := range committed {
		if string(r.Value[:6]) == "round1" {
			return fmt.Errorf("aborted record %q read_committed", r.Value)
		}
	}
	everything, err := franzReadAll(ctx, e, topic, 30)
	if err != nil {
		return err
	}
	if err := check(len(everything) == 30, "read_uncommitted read %d records, want 30", len(everything)); err != nil {
		return err
	}
	// A second producer with the same id fences the first.
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
		return err
	}
	other, err := franzClient(e, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txnID))
	if err != nil {
		return err
	}
	defer other.Close()
	if err := other.BeginTransaction(); err != nil {
		return err
	}
	if err := other.ProduceSync(ctx, kgo.StringRecord("second")).FirstErr(); err != nil {
		return fmt.Errorf("the new producer: %w", err)
	}
	if err := other.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return err
	}
	endErr := cl.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(endErr, kerr.ProducerFenced) && !errors.Is(endErr, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("the fenced producer committed: %v", endErr)
	}
	final, err := franzReadAll(ctx, e, topic, 21, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	return check(len(final) == 21, "after fencing read_committed read %d records, want 21", len(final))
}

// franzAdmin: kadm's view of topics, configs, partitions, records, offsets, groups,
// producers, transactions, log dirs and the cluster.
func franzAdmin(ctx context.Context, e *env) error {
	cl, err := franzClient(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic := e.name("t")
	ret := "3600000"
	created, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ret}, topic)
	if err != nil || created.Err != nil {
		return fmt.Errorf("create: %v %v", err, created.Err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); !errors.Is(firstNonNil(err, createErr(adm, ctx, topic)), kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating twice: %v", err)
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	d := details[topic]
	if err := first(d.Err, check(len(d.Partitions) == 2, "%d partitions", len(d.Partitions)), check(d.ID != kadm.TopicID{}, "no topic id")); err != nil {
		return err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return err
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		return err
	}
	var retention *kadm.Config
	for i := range rc.Configs {
		if rc.Configs[i].Key == "retention.ms" {
			retention = &rc.Configs[i]
		}
	}
	if err := check(retention != nil && retention.Value != nil && *retention.Value == ret, "retention.ms described as %v", retention); err != nil {
		return err
	}
	mmb := "123456"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &mmb}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic); err != nil {
		return err
	}
	// Kafka applies config changes through its controller: the broker shows them shortly after.
	altered := func() error {
		configs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return err
		}
		rc, _ := configs.On(topic, nil)
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && (c.Value == nil || *c.Value != mmb) {
				return fmt.Errorf("max.message.bytes after alter: %v", c.Value)
			}
			if c.Key == "retention.ms" && c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
				return fmt.Errorf("retention.ms override not deleted")
			}
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); altered() != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := altered(); err != nil {
		return err
	}
	if _, err := adm.UpdatePartitions(ctx, 4, topic); err != nil {
		return err
	}
	prod, err := franzClient(e, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, &kgo.Record{Partition: 0, Value: []byte("v"), Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
	}
	err = prod.ProduceSync(ctx, recs...).FirstErr()
	prod.Close()
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != 50 {
		return fmt.Errorf("end offset %d, want 50", o.Offset)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, 1_700_000_000_020, topic)
	if err != nil {
		return err
	}
	if o, _ := after.Lookup(topic, 0); o.Offset != 20 {
		return fmt.Errorf("offset after a timestamp %d, want 20", o.Offset)
	}
	toDelete := kadm.Offsets{}
	toDelete.Add(kadm.Offset{Topic: topic, Partition: 0, At: 10})
	deleted, err := adm.DeleteRecords(ctx, toDelete)
	if err != nil {
		return err
	}
	if err := deleted.Error(); err != nil {
		return err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 10 {
		return fmt.Errorf("start offset after DeleteRecords %d, want 10", o.Offset)
	}
	group := e.name("g")
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 42, LeaderEpoch: -1, Metadata: "meta"})
	if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
		return err
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 42 || o.Metadata != "meta" {
		return fmt.Errorf("fetched offset %+v", o)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	if _, ok := groups[group]; !ok {
		return fmt.Errorf("group %s not listed: %v", group, groups.Groups())
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	if g := described[group]; g.Err != nil || g.State != "Empty" {
		return fmt.Errorf("described group: %+v", g)
	}
	if _, err := adm.DeleteGroup(ctx, group); err != nil {
		return err
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return err
	}
	size := int64(-1)
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == topic && p.Partition == 0 {
				size = p.Size
			}
		})
	})
	if err := check(size > 0, "log dir size of partition 0: %d", size); err != nil {
		return err
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	controllerListed := false
	for _, b := range meta.Brokers {
		controllerListed = controllerListed || b.NodeID == meta.Controller
	}
	if err := check(len(meta.Brokers) == expectedBrokers() && controllerListed && meta.Cluster != "", "cluster metadata %+v", meta); err != nil {
		return err
	}
	deletedTopics, err := adm.DeleteTopics(ctx, topic)
	if err != nil {
		return err
	}
	return deletedTopics.Error()
}

// createErr is the per-topic error of creating topic again (kadm reports it in the response).
func createErr(adm *kadm.Client, ctx context.Context, topic string) error {
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

func firstNonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
