package testenv

import (
	"context"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AggregateClusterRoles does, once, what kube-controller-manager's
// clusterrole-aggregation controller does continuously: every ClusterRole
// with an aggregationRule gets the union of the rules of the ClusterRoles its
// selectors match. The test API server runs no controller-manager, so without
// this the built-in admin, edit and view roles would stay empty; the one-node
// cluster (test/cluster) checks the same rights with the real controller.
func AggregateClusterRoles(ctx context.Context, c client.Client) error {
	// Three passes reach admin, which aggregates edit, which aggregates view.
	for range 3 {
		var roles rbacv1.ClusterRoleList
		if err := c.List(ctx, &roles); err != nil {
			return err
		}
		for _, r := range roles.Items {
			if r.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range r.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					return err
				}
				for _, o := range roles.Items {
					if o.Name == r.Name || !s.Matches(labels.Set(o.Labels)) {
						continue
					}
					for _, rule := range o.Rules {
						if !slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return equalRules(x, rule) }) {
							rules = append(rules, rule)
						}
					}
				}
			}
			r.Rules = rules
			if err := c.Update(ctx, &r); err != nil {
				return fmt.Errorf("aggregating into ClusterRole %s: %w", r.Name, err)
			}
		}
	}
	return nil
}

func equalRules(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.ResourceNames, b.ResourceNames) && slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}
