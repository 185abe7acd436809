// pgJDBC (Debian's libpostgresql-jdbc-java) through pool64, run by tests/integration/test_jdbc.py with Java's
// single-file source launcher: `java -cp postgresql.jar JdbcCheck.java URL USER PASSWORD TABLE`.
// Prints one "ok <check>" line per check; any failure throws (exit status 1 with the stack trace).
import java.math.BigDecimal;
import java.sql.*;
import java.util.Properties;

public class JdbcCheck {
    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static Connection connect(String url, String user, String password) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("sslmode", "disable");
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "30");
        return DriverManager.getConnection(url, p);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1], password = args[2], table = args[3];
        try (Connection a = connect(url, user, password); Connection b = connect(url, user, password)) {
            // Server-side prepared statements: pgJDBC switches to a named statement (S_1, S_2, ...) after
            // prepareThreshold (5) executions; two connections interleave so they share server connections.
            try (PreparedStatement pa = a.prepareStatement("select ?::int + 1, ?::text");
                 PreparedStatement pb = b.prepareStatement("select ?::int * 2, upper(?::text)")) {
                for (int i = 0; i < 25; i++) {
                    pa.setInt(1, i);
                    pa.setString(2, "a" + i);
                    try (ResultSet r = pa.executeQuery()) {
                        check(r.next() && r.getInt(1) == i + 1 && r.getString(2).equals("a" + i), "a row " + i);
                    }
                    pb.setInt(1, i);
                    pb.setString(2, "b" + i);
                    try (ResultSet r = pb.executeQuery()) {
                        check(r.next() && r.getInt(1) == i * 2 && r.getString(2).equals("B" + i), "b row " + i);
                    }
                }
            }
            System.out.println("ok prepared");

            try (Statement s = a.createStatement()) {
                s.execute("drop table if exists " + table);
                s.execute("create table " + table + "(id int primary key, note text, amount numeric(12,2))");
            }
            // A transaction with a batch insert, committed; another rolled back.
            a.setAutoCommit(false);
            try (PreparedStatement ins = a.prepareStatement("insert into " + table + " values (?, ?, ?)")) {
                for (int i = 1; i <= 50; i++) {
                    ins.setInt(1, i);
                    ins.setString(2, "note " + i + " \u00e9\u2603");
                    ins.setBigDecimal(3, new BigDecimal(i + ".25"));
                    ins.addBatch();
                }
                int[] counts = ins.executeBatch();
                check(counts.length == 50, "batch size");
            }
            a.commit();
            try (Statement s = a.createStatement()) {
                s.executeUpdate("delete from " + table + " where id <= 10");
            }
            a.rollback();
            a.setAutoCommit(true);
            try (Statement s = b.createStatement(); ResultSet r = s.executeQuery(
                    "select count(*), sum(amount), max(note) from " + table)) {
                check(r.next() && r.getInt(1) == 50, "count after rollback");
                check(r.getBigDecimal(2).compareTo(new BigDecimal("1287.50")) == 0, "sum");
                check(r.getString(3).endsWith("\u00e9\u2603"), "unicode round trip");
            }
            System.out.println("ok transactions");

            // An error leaves the connection usable, with the server's SQLSTATE.
            try (Statement s = a.createStatement()) {
                try {
                    s.executeQuery("select 1/0");
                    throw new AssertionError("no error");
                } catch (SQLException e) {
                    check("22012".equals(e.getSQLState()), "sqlstate " + e.getSQLState());
                }
                try (ResultSet r = s.executeQuery("select 42")) {
                    check(r.next() && r.getInt(1) == 42, "usable after error");
                }
            }
            System.out.println("ok errors");

            // Types and metadata queries the driver issues itself.
            try (PreparedStatement p = b.prepareStatement(
                    "select ?::bytea, ?::timestamptz, array[1,2,3], ?::uuid, null::int")) {
                p.setBytes(1, new byte[] {0, 1, (byte) 0xff});
                p.setTimestamp(2, Timestamp.valueOf("2026-11-27 12:34:56"));
                p.setObject(3, java.util.UUID.fromString("12345678-1234-5678-1234-567812345678"));
                try (ResultSet r = p.executeQuery()) {
                    check(r.next(), "types row");
                    byte[] bytes = r.getBytes(1);
                    check(bytes.length == 3 && bytes[2] == (byte) 0xff, "bytea");
                    check(r.getTimestamp(2) != null, "timestamptz");
                    Integer[] arr = (Integer[]) r.getArray(3).getArray();
                    check(arr.length == 3 && arr[2] == 3, "array");
                    check(r.getObject(4).toString().equals("12345678-1234-5678-1234-567812345678"), "uuid");
                    r.getInt(5);
                    check(r.wasNull(), "null");
                }
            }
            DatabaseMetaData md = b.getMetaData();
            check(md.getDatabaseMajorVersion() >= 15, "server version");
            try (ResultSet r = md.getTables(null, "public", table, new String[] {"TABLE"})) {
                check(r.next() && r.getString("TABLE_NAME").equals(table), "metadata");
            }
            System.out.println("ok types");

            try (Statement s = a.createStatement()) {
                s.execute("drop table " + table);
            }
        }
        System.out.println("all checks passed");
    }
}
