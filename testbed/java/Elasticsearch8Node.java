// kelp test bed: an embedded Elasticsearch 8.x node (no bin/ launcher, no bootstrap checks,
// no entitlements, no x-pack). Since 8.10 node construction is package-private, hence the package.
// usage: java -cp 'classes:lib/*' org.elasticsearch.node.Elasticsearch8Node key=value...
package org.elasticsearch.node;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.Collection;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.env.Environment;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.plugins.KelpClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

public final class Elasticsearch8Node extends Node {
    static final String[] MODULES = {
        "org.elasticsearch.transport.netty4.Netty4Plugin",
        "org.elasticsearch.node.Elasticsearch8Node$RootEndpoint",
    };

    /**
     * GET / and HEAD / (the "rest-root" module of the distribution is not on Maven Central):
     * answers with the usual node/cluster/version document.
     */
    public static final class RootEndpoint extends Plugin implements ActionPlugin {
        private volatile ClusterService clusterService;

        @Override
        public Collection<?> createComponents(PluginServices services) {
            clusterService = services.clusterService();
            return List.of();
        }

        @Override
        public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry registry,
                RestController controller, ClusterSettings clusterSettings, IndexScopedSettings indexSettings,
                SettingsFilter filter, IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes,
                Predicate<NodeFeature> features) {
            return List.of(new BaseRestHandler() {
                @Override
                public String getName() {
                    return "kelp_testbed_root";
                }

                @Override
                public List<Route> routes() {
                    return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
                }

                @Override
                protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
                    if (request.method() == RestRequest.Method.HEAD) {
                        return channel -> channel.sendResponse(
                            new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, BytesArray.EMPTY));
                    }
                    return channel -> {
                        Build build = Build.current();
                        XContentBuilder b = channel.newBuilder();
                        b.startObject()
                            .field("name", clusterService.getNodeName())
                            .field("cluster_name", clusterService.getClusterName().value())
                            .field("cluster_uuid", clusterService.state().metadata().clusterUUID())
                            .startObject("version")
                            .field("number", build.qualifiedVersion())
                            .field("build_flavor", "default")
                            .field("build_type", build.type().displayName())
                            .field("build_hash", build.hash())
                            .field("build_date", build.date())
                            .field("build_snapshot", build.isSnapshot())
                            .field("lucene_version", org.apache.lucene.util.Version.LATEST.toString())
                            .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                            .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                            .endObject()
                            .field("tagline", "You Know, for Search")
                            .endObject();
                        channel.sendResponse(new RestResponse(RestStatus.OK, b));
                    };
                }
            });
        }
    }

    Elasticsearch8Node(Environment env, List<Class<? extends Plugin>> modules) {
        super(NodeConstruction.prepareConstruction(env, PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false),
            new NodeServiceProvider() {
                @Override
                PluginsService newPluginService(Environment e, PluginsLoader loader) {
                    return new KelpClasspathPluginsService(e.settings(), e.configDir(), loader, modules);
                }
            }, true));
    }

    public static void main(String[] args) throws Exception {
        Settings.Builder settings = Settings.builder();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            settings.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        List<Class<? extends Plugin>> modules = new ArrayList<>();
        for (String name : MODULES) {
            try {
                modules.add(Class.forName(name).asSubclass(Plugin.class));
            } catch (ClassNotFoundException e) {
                System.err.println("kelp-testbed: module not on classpath, skipped: " + name);
            }
        }
        System.err.println("kelp-testbed: loading modules " + modules);
        // ES's own logging facade needs its provider set (the launcher does this); log4j itself is
        // configured by -Dlog4j2.configurationFile.
        org.elasticsearch.common.logging.LogConfigurator.configureESLogging();
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings.build(), Map.of(), null, () -> "kelp");
        Node node = new Elasticsearch8Node(env, modules);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.prepareForClose();
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "kelp-testbed-shutdown"));
        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1); // the shutdown hook closes the node
        }
        closed.await();
    }
}
