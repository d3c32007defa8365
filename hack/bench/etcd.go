package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Fixtures are verifier Secrets written for the bench, not what it measures.
// Through kube-apiserver each create costs about 2 ms of its CPU (admission,
// managed fields, JSON or protobuf decoding, the etcd round trip): 200,000 of
// them took 17 minutes of the scale curve's 26 on this 2-core host. An
// etcdSink writes the same objects straight into etcd, the way kube-apiserver
// stores them (the "k8s\x00" protobuf envelope under
// /registry/secrets/<namespace>/<name>), a hundred to a transaction, through
// etcd's own HTTP/JSON gateway (so the bench needs no etcd client library).
// kube-apiserver's watch cache sees every write from its etcd watch, and
// every later LIST, WATCH and GET goes through kube-apiserver as usual.
type secretSink interface {
	// batch is how many Secrets write takes at once, parallel how many
	// writes run at once.
	batch() int
	parallel() int
	write(ctx context.Context, objs []*corev1.Secret) error
}

// apiSink creates each Secret through kube-apiserver (-fixtures-via-api).
type apiSink struct{ c client.Client }

func (apiSink) batch() int    { return 1 }
func (apiSink) parallel() int { return 32 }

func (s apiSink) write(ctx context.Context, objs []*corev1.Secret) error {
	for _, o := range objs {
		if err := s.c.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// etcdTxnOps stays under etcd's default --max-txn-ops (128).
const etcdTxnOps = 100

type etcdSink struct {
	txnURL string
	hc     *http.Client
	codec  runtime.Encoder
}

func newEtcdSink(env *envtest.Environment) (*etcdSink, error) {
	if env.ControlPlane.Etcd == nil || env.ControlPlane.Etcd.URL == nil {
		return nil, fmt.Errorf("bench: envtest has no etcd URL")
	}
	u := *env.ControlPlane.Etcd.URL
	u.Path = "/v3/kv/txn"
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return &etcdSink{txnURL: u.String(), hc: &http.Client{Timeout: time.Minute},
		codec: protobuf.NewSerializer(scheme, scheme)}, nil
}

func (*etcdSink) batch() int    { return etcdTxnOps }
func (*etcdSink) parallel() int { return 4 }

// newSink is where the bench's verifiers are written: straight into etcd, or
// through kube-apiserver with viaAPI (-fixtures-via-api).
func newSink(env *envtest.Environment, c client.Client, viaAPI bool) (secretSink, error) {
	if viaAPI {
		return apiSink{c}, nil
	}
	return newEtcdSink(env)
}

type etcdPut struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type etcdOp struct {
	RequestPut etcdPut `json:"request_put"`
}

// write puts objs in one transaction. The objects get what kube-apiserver
// would have given them on create (a uid, a creation time); the
// resourceVersion is etcd's revision, filled in by kube-apiserver on read.
func (s *etcdSink) write(ctx context.Context, objs []*corev1.Secret) error {
	ops := make([]etcdOp, 0, len(objs))
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for _, o := range objs {
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
		o.UID = uuid.NewUUID()
		o.CreationTimestamp = now
		var buf bytes.Buffer
		if err := s.codec.Encode(o, &buf); err != nil {
			return err
		}
		key := "/registry/secrets/" + o.Namespace + "/" + o.Name
		ops = append(ops, etcdOp{RequestPut: etcdPut{
			Key:   base64.StdEncoding.EncodeToString([]byte(key)),
			Value: base64.StdEncoding.EncodeToString(buf.Bytes()),
		}})
	}
	body, err := json.Marshal(map[string]any{"success": ops})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.txnURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("etcd txn: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("etcd txn: %s: %s", resp.Status, msg)
	}
	var out struct {
		Succeeded bool `json:"succeeded"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("etcd txn of %d puts: decoding the answer: %w", len(objs), err)
	}
	if !out.Succeeded {
		return fmt.Errorf("etcd txn of %d puts not applied", len(objs))
	}
	return nil
}

// waitVisible returns once kube-apiserver's watch cache holds every Secret
// written to etcd so far: it creates a marker Secret through kube-apiserver
// (after the direct writes, so at a later etcd revision) and reads it back
// with resourceVersion "0", which the watch cache answers. The cache applies
// etcd's events in revision order, so when it has the marker it has the rest,
// and what follows measures a control plane that has caught up.
func waitVisible(ctx context.Context, c client.Client, ns, marker string) error {
	m := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: marker}}
	if err := c.Create(ctx, m); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(m), &corev1.Secret{},
			&client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: kube-apiserver's watch cache never caught up with the direct etcd writes: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
