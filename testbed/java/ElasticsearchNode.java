// kelp test bed: an embedded Elasticsearch 7.x node (no bin/ launcher, no bootstrap checks).
// usage: java -cp 'classes:lib/*' ElasticsearchNode key=value...   (settings, like -E key=value)
// Modules are loaded from the classpath; a module whose jar is absent is skipped and reported.
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;

public final class ElasticsearchNode extends Node {
    static final String[] MODULES = {
        "org.elasticsearch.transport.Netty4Plugin",
        "org.elasticsearch.analysis.common.CommonAnalysisPlugin",
        "org.elasticsearch.index.mapper.MapperExtrasPlugin",
        "org.elasticsearch.reindex.ReindexPlugin",
        "org.elasticsearch.painless.PainlessPlugin",
        "org.elasticsearch.join.ParentJoinPlugin",
        "org.elasticsearch.percolator.PercolatorPlugin",
        "org.elasticsearch.script.mustache.MustachePlugin",
        "org.elasticsearch.search.aggregations.matrix.MatrixAggregationPlugin",
        "org.elasticsearch.index.rankeval.RankEvalPlugin",
    };

    ElasticsearchNode(Settings settings, Collection<Class<? extends Plugin>> modules) {
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
        Node node = new ElasticsearchNode(settings.build(), modules);
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
