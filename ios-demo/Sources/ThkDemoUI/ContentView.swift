#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import SwiftUI

public struct ContentView: View {
    public init() {}

    @StateObject private var session = DemoSession()
    @State private var role = DemoSession.Role.receive
    @State private var host = "192.168.1.10"
    @State private var port = "47000"
    @State private var key = ""

    public var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            Picker("Role", selection: $role) {
                ForEach(DemoSession.Role.allCases, id: \.self) { Text($0.rawValue).tag($0) }
            }
            .pickerStyle(.segmented)
            if role == .send { TextField("receiver address", text: $host) }
            TextField("UDP port", text: $port)
            SecureField("session key (64 hex digits, the SDK's key file)", text: $key)
            HStack {
                Button("Start") { session.start(role: role, host: host, port: UInt16(port) ?? 47000, keyHex: key) }
                Button("Stop") { session.stop() }
                if role == .receive { Button("Re-anchor") { session.reanchor() } }
            }
            PixelBufferView(buffer: session.frame)
            Text(session.status).font(.headline)
            Text(session.counters).font(.caption.monospaced())
            Text(session.placement).font(.caption2)
        }
        .padding()
    }
}
#endif
