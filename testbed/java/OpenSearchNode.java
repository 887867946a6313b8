// kelp test bed: an embedded OpenSearch 2.x node (no bin/ launcher, no bootstrap checks).
// usage: java -cp 'classes:lib/*' OpenSearchNode key=value...   (settings, like -E key=value)
// Modules are loaded from the classpath; a module whose jar is absent is skipped and reported.
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class OpenSearchNode extends Node {
    static final String[] MODULES = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.join.ParentJoinPlugin",
        "org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin",
        "org.opensearch.ingest.common.IngestCommonPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
        "org.opensearch.percolator.PercolatorPlugin",
        "org.opensearch.index.rankeval.RankEvalPlugin",
        "org.opensearch.geo.GeoModulePlugin",
    };

    OpenSearchNode(Settings settings, Collection<Class<? extends Plugin>> modules) {
        super(InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "kelp"), modules, true);
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
        Node node = new OpenSearchNode(settings.build(), modules);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
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
