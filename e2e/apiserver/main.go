// Command kube-apiserver is the apiextensions-apiserver of Kubernetes (the API server that
// serves CustomResourceDefinitions and custom resources, backed by etcd) with three changes
// from its stock main.go, so that kubectl can talk to it as to a real cluster:
//
//   - discovery is on (/api, /apis and aggregated discovery): the stock server turns it
//     off because inside kube-apiserver the aggregator serves it; without it kubectl finds
//     no resource;
//   - the OpenAPI v2 config is set (v3 is already set by the options), as the package's own
//     pkg/cmd/server/testing/testserver.go does; without it kubectl's client-side validation
//     fails with "failed to download openapi";
//   - the groups of established CRDs are listed in the unaggregated /apis (APIGroupList), as
//     kube-apiserver's aggregator lists them; the stock server lists only
//     apiextensions.k8s.io there (the aggregated /apis that kubectl reads has them anyway).
//
// Built offline by build.sh (GOPATH mode against Debian's golang-k8s-apiextensions-apiserver-dev).
package main

import (
	"context"
	"os"
	"sort"

	"github.com/spf13/cobra"

	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	extensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/version"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/cli"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	cmd := &cobra.Command{
		Use:   "kube-apiserver",
		Short: "API extensions API server (CRDs and custom resources) with discovery and OpenAPI on",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return run(c.Context(), o)
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}

func run(ctx context.Context, o *options.CustomResourceDefinitionsServerOptions) error {
	config, err := o.Config()
	if err != nil {
		return err
	}
	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, openapinamer.NewDefinitionNamer(extensionsapiserver.Scheme))
	if config.GenericConfig.OpenAPIV3Config == nil {
		config.GenericConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, openapinamer.NewDefinitionNamer(extensionsapiserver.Scheme, scheme.Scheme))
	}

	completed := config.Complete()
	// Complete() turns discovery off (kube-apiserver's aggregator serves it there); turn it back on.
	completed.GenericConfig.EnableDiscovery = true

	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	if err := listCRDGroups(server); err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// listCRDGroups keeps the unaggregated /apis in step with the established CRDs: one entry per
// group with its served versions, the preferred one first (Kubernetes version order), as the
// per-group /apis/<group> document of the CRD discovery controller has them.
func listCRDGroups(server *extensionsapiserver.CustomResourceDefinitions) error {
	manager := server.GenericAPIServer.DiscoveryGroupManager
	crds := server.Informers.Apiextensions().V1().CustomResourceDefinitions()
	listed := map[string]bool{} // groups this function added; handlers run one at a time
	sync := func() {
		all, err := crds.Lister().List(labels.Everything())
		if err != nil {
			return
		}
		groups := map[string][]string{}
		for _, crd := range all {
			if !apiextensionshelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
				continue
			}
			for _, v := range crd.Spec.Versions {
				if v.Served && !contains(groups[crd.Spec.Group], v.Name) {
					groups[crd.Spec.Group] = append(groups[crd.Spec.Group], v.Name)
				}
			}
		}
		for group := range listed {
			if _, ok := groups[group]; !ok {
				manager.RemoveGroup(group)
				delete(listed, group)
			}
		}
		for group, versions := range groups {
			sort.Slice(versions, func(i, j int) bool {
				return version.CompareKubeAwareVersionStrings(versions[i], versions[j]) > 0
			})
			apiGroup := metav1.APIGroup{Name: group}
			for _, v := range versions {
				apiGroup.Versions = append(apiGroup.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
			}
			apiGroup.PreferredVersion = apiGroup.Versions[0]
			manager.AddGroup(apiGroup)
			listed[group] = true
		}
	}
	_, err := crds.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(interface{}) { sync() },
		UpdateFunc: func(interface{}, interface{}) { sync() },
		DeleteFunc: func(interface{}) { sync() },
	})
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
