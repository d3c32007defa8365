package tenancy

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// DefaultSnapshotName names the TokenPolicySnapshot of a release called
// "tokensmith" (the chart passes its fullname).
const DefaultSnapshotName = "tokensmith"

// FromTokenPolicies returns the policies in name order.
func FromTokenPolicies(items []authv1alpha1.TokenPolicy, denyUnlessAllowed bool) Policies {
	p := Policies{DenyUnlessAllowed: denyUnlessAllowed, Items: make([]authv1alpha1.NamedTokenPolicy, 0, len(items))}
	for i := range items {
		if items[i].DeletionTimestamp != nil {
			continue
		}
		p.Items = append(p.Items, authv1alpha1.NamedTokenPolicy{Name: items[i].Name, TokenPolicySpec: *items[i].Spec.DeepCopy()})
	}
	sort.Slice(p.Items, func(i, j int) bool { return p.Items[i].Name < p.Items[j].Name })
	return p
}

// Snapshot is the TokenPolicySnapshot named name that admission reads: the
// same policies, so that admission and the controller judge alike.
func (p Policies) Snapshot(name string) *authv1alpha1.TokenPolicySnapshot {
	s := &authv1alpha1.TokenPolicySnapshot{
		TypeMeta:   metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "TokenPolicySnapshot"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	for i := range p.Items {
		s.Spec.Policies = append(s.Spec.Policies, *p.Items[i].DeepCopy())
	}
	return s
}
