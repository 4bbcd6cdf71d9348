// The reference guest's Java service (run with the JDK's source launcher, `java Service.java PORT FILE`):
// an HTTP server on a thread pool with a ConcurrentHashMap cache, a 16 MiB direct buffer and a read-only
// mapping of a file it serves from.
//
// GET /item/<n>   a cached string    GET /file/<n>   a byte of the mapped file    GET /gc   System.gc()

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;

public class Service {
    static final ConcurrentHashMap<Integer, String> cache = new ConcurrentHashMap<>();
    static final ByteBuffer direct = ByteBuffer.allocateDirect(16 << 20);

    static void reply(com.sun.net.httpserver.HttpExchange ex, String body) throws IOException {
        byte[] data = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(200, data.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(data);
        }
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        MappedByteBuffer mapped;
        try (FileChannel ch = FileChannel.open(Path.of(args[1]), StandardOpenOption.READ)) {
            mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        }
        for (int i = 0; i < direct.capacity(); i += 4096) direct.put(i, (byte) (i >> 12));
        for (int i = 0; i < 100_000; i++) cache.put(i, "item-" + i + "-" + Integer.toHexString(i * 31));
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.createContext("/item/", ex -> {
            int n = Integer.parseInt(ex.getRequestURI().getPath().substring(6));
            reply(ex, cache.computeIfAbsent(n, k -> "item-" + k));
        });
        server.createContext("/file/", ex -> {
            int n = Integer.parseInt(ex.getRequestURI().getPath().substring(6));
            reply(ex, Integer.toString(mapped.get((n * 4096) % mapped.capacity())));
        });
        server.createContext("/gc", ex -> {
            System.gc();
            reply(ex, "ok");
        });
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        System.out.println("service: " + cache.size() + " cached items, listening on " + port);
    }
}
