package dev.gregor.compat;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;

import org.apache.kafka.common.message.ApiMessageType;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;

/**
 * One raw Kafka connection: requests are encoded and responses decoded with Kafka's own
 * generated message classes (kafka-clients), so what Gregor sends is read by Kafka's code,
 * not by the crate Gregor itself encodes with.
 */
final class Wire implements AutoCloseable {
    final String address;
    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private int correlationId;

    Wire(String address) throws IOException {
        this.address = address;
        int colon = address.lastIndexOf(':');
        socket = new Socket();
        socket.connect(new InetSocketAddress(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1))), 10_000);
        socket.setSoTimeout(30_000);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    /** A connection authenticated with SASL PLAIN (handshake v1, authenticate v2) as {@code user}. */
    static Wire plain(String address, String user, String password) throws IOException {
        Wire w = new Wire(address);
        var handshake = (org.apache.kafka.common.message.SaslHandshakeResponseData) w.send(
                new org.apache.kafka.common.message.SaslHandshakeRequestData().setMechanism("PLAIN"), (short) 1).body();
        var auth = (org.apache.kafka.common.message.SaslAuthenticateResponseData) w.send(
                new org.apache.kafka.common.message.SaslAuthenticateRequestData().setAuthBytes(
                        ("\0" + user + "\0" + password).getBytes(java.nio.charset.StandardCharsets.UTF_8)), (short) 2).body();
        if (handshake.errorCode() != 0 || auth.errorCode() != 0) {
            w.close();
            throw new IOException("SASL PLAIN as " + user + " failed: " + handshake.errorCode() + "/" + auth.errorCode());
        }
        return w;
    }

    /** What came back: the decoded body, or the error code of a KIP-511 style fallback. */
    record Answer(ApiMessage body, short version) {}

    /** Sends {@code request} at {@code version} and decodes the answer at the same version. */
    Answer send(ApiMessage request, short version) throws IOException {
        return send(request, version, version);
    }

    /**
     * Sends {@code request} at {@code version}; decodes the answer's body at
     * {@code responseVersion} (ApiVersions answers an unsupported version with a v0 body).
     */
    Answer send(ApiMessage request, short version, short responseVersion) throws IOException {
        ApiMessageType type = ApiMessageType.fromApiKey(request.apiKey());
        int corr = ++correlationId;
        RequestHeaderData header = new RequestHeaderData()
                .setRequestApiKey(request.apiKey())
                .setRequestApiVersion(version)
                .setClientId("gregor-differential")
                .setCorrelationId(corr);
        short headerVersion = type.requestHeaderVersion(version);
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = header.size(cache, headerVersion) + request.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size);
        buf.putInt(size);
        ByteBufferAccessor w = new ByteBufferAccessor(buf);
        header.write(w, cache, headerVersion);
        request.write(w, cache, version);
        out.write(buf.array());
        out.flush();

        int len = in.readInt();
        byte[] frame = new byte[len];
        in.readFully(frame);
        ByteBufferAccessor r = new ByteBufferAccessor(ByteBuffer.wrap(frame));
        // ApiVersions always answers with response header v0 (KIP-511).
        short responseHeaderVersion = request.apiKey() == 18 ? 0 : type.responseHeaderVersion(version);
        ResponseHeaderData rh = new ResponseHeaderData(r, responseHeaderVersion);
        if (rh.correlationId() != corr) {
            throw new IOException("correlation id " + rh.correlationId() + " for request " + corr);
        }
        ApiMessage body = type.newResponse();
        body.read(r, responseVersion);
        return new Answer(body, responseVersion);
    }

    /** Sends raw bytes (a request the client could not encode) and returns the raw answer, or null on close. */
    byte[] sendRaw(byte[] frame) throws IOException {
        out.write(frame);
        out.flush();
        try {
            int len = in.readInt();
            byte[] answer = new byte[len];
            in.readFully(answer);
            return answer;
        } catch (java.io.EOFException | java.net.SocketException e) {
            return null;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
