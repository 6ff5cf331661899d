package modelgate.nacostest;

import com.alibaba.nacos.NacosServerBasicApplication;
import com.alibaba.nacos.NacosServerWebApplication;
import com.alibaba.nacos.core.listener.startup.NacosStartUp;
import com.alibaba.nacos.core.listener.startup.NacosStartUpManager;
import com.alibaba.nacos.sys.env.DeploymentType;
import com.alibaba.nacos.sys.env.EnvUtil;
import org.springframework.boot.Banner;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Starts a standalone Nacos server (naming + config, no console) from a plain
 * classpath, for modelgate's integration tests. Started by scripts/nacos-up.sh,
 * which passes ports, bind address and nacos.home as system properties.
 *
 * <p>Nacos 3 runs as two Spring contexts: a core context without a web server, then
 * the server web context (HTTP API + gRPC) as its child. Each context must be
 * preceded by its start-up phase, otherwise Nacos refuses to start.
 */
public final class NacosTestServer {

    private NacosTestServer() {
    }

    public static void main(String[] args) {
        // Nacos reads standalone mode only from this system property.
        System.setProperty("nacos.standalone", "true");
        // Server only: no console context.
        System.setProperty("nacos.deployment.type", "server");
        EnvUtil.setDeploymentType(DeploymentType.SERVER);
        try {
            NacosStartUpManager.start(NacosStartUp.CORE_START_UP_PHASE);
            ConfigurableApplicationContext core = new SpringApplicationBuilder(NacosServerBasicApplication.class)
                    .web(WebApplicationType.NONE)
                    .bannerMode(Banner.Mode.OFF)
                    .run(args);

            NacosStartUpManager.start(NacosStartUp.WEB_START_UP_PHASE);
            new SpringApplicationBuilder(NacosServerWebApplication.class)
                    .parent(core)
                    .bannerMode(Banner.Mode.OFF)
                    .run(args);
        } catch (Throwable t) {
            // Non-daemon threads would keep a half-started JVM alive: exit instead,
            // so nacos-up.sh sees the process die and shows the log.
            t.printStackTrace();
            System.exit(1);
        }
    }
}
