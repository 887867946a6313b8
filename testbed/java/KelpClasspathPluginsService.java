// kelp test bed: a PluginsService for Elasticsearch 8.x that adds plugin classes found on the
// classpath (the way the test framework's mock node does), for Elasticsearch8Node.
package org.elasticsearch.plugins;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.elasticsearch.Build;
import org.elasticsearch.common.settings.Settings;

public class KelpClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> all;

    public KelpClasspathPluginsService(Settings settings, Path configDir, PluginsLoader loader,
                                       List<Class<? extends Plugin>> classes) {
        super(settings, configDir, loader);
        List<LoadedPlugin> list = new ArrayList<>(super.plugins());
        for (Class<? extends Plugin> cls : classes) {
            PluginDescriptor d = new PluginDescriptor(cls.getName(), "classpath module", "NA",
                Build.current().version(), "17", cls.getName(), null, List.of(), false, false, false, false);
            list.add(new LoadedPlugin(d, loadPlugin(cls, settings, configDir), cls.getClassLoader()));
        }
        loadExtensions(list);
        all = List.copyOf(list);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return all;
    }
}
