package tenancy

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// specFields returns the names of the properties under spec in the generated
// CRD of plural, sorted.
func specFields(t *testing.T, plural string) []string {
	t.Helper()
	b, err := os.ReadFile("../../config/crd/bases/auth.tokensmith.io_" + plural + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s: %d versions; this test knows one", plural, len(crd.Spec.Versions))
	}
	spec, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	if !ok {
		t.Fatalf("%s: no spec in the schema", plural)
	}
	var names []string
	for n := range spec.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestEveryTenantFieldIsBoundedOrHarmless walks the CRDs that make generates:
// a spec field of OAuthClient or User that Fields does not list fails here,
// and so does a listed field the schema no longer has.
func TestEveryTenantFieldIsBoundedOrHarmless(t *testing.T) {
	policyRules := specFields(t, "tokenpolicies")
	used := map[string]bool{"namespaceSelector": true}
	for kind, plural := range map[string]string{"OAuthClient": "oauthclients", "User": "users"} {
		var listed []string
		for _, f := range Fields {
			if f.Kind != kind {
				continue
			}
			listed = append(listed, f.Name)
			switch {
			case (f.Rule == "") == (f.Harmless == ""):
				t.Errorf("%s.spec.%s: give either the rule that bounds it or why it is harmless, not both or neither", kind, f.Name)
			case f.Rule != "" && !slices.Contains(policyRules, f.Rule):
				t.Errorf("%s.spec.%s: rule %q is not a TokenPolicy field", kind, f.Name, f.Rule)
			}
			used[f.Rule] = f.Rule != ""
		}
		sort.Strings(listed)
		if schema := specFields(t, plural); !slices.Equal(listed, schema) {
			t.Errorf("%s: the CRD's spec has %v, tenancy.Fields lists %v: bound the new field with a TokenPolicy rule or say why it is harmless", kind, schema, listed)
		}
	}
	for _, r := range policyRules {
		if !used[r] {
			t.Errorf("TokenPolicy field %q bounds no field in tenancy.Fields", r)
		}
	}
}

// TestAdmissionJudgesTheSameRules reads the rules each admission policy
// evaluates, in the order its message names them, from the chart: they must
// be the rules of Fields, in the order CheckClient and CheckUser name them.
func TestAdmissionJudgesTheSameRules(t *testing.T) {
	b, err := os.ReadFile("../../charts/tokensmith/templates/admission-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`- name: rules\n\s+expression: "\[(.*)\]"`).FindAllStringSubmatch(string(b), -1)
	if len(m) != 2 {
		t.Fatalf("found %d rules lists in the admission policy, want 2 (OAuthClients, then Users)", len(m))
	}
	for i, kind := range []string{"OAuthClient", "User"} {
		var chart []string
		for _, r := range strings.Split(m[i][1], ",") {
			chart = append(chart, strings.Trim(strings.TrimSpace(r), "'"))
		}
		if want := Rules(kind); !slices.Equal(chart, want) {
			t.Errorf("%s: the admission policy judges %v, tenancy.Fields bounds %v", kind, chart, want)
		}
	}
}

// TestTheReadmeListsEveryField: the README's multi-tenant section has a row
// for every field of Fields, with its rule.
func TestTheReadmeListsEveryField(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, f := range Fields {
		row := "| `" + f.Kind + ".spec." + f.Name + "` | "
		if f.Rule != "" {
			row += "`" + f.Rule + "`"
		} else {
			row += "none:"
		}
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no row starting %q", row)
		}
	}
}
