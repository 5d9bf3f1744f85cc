// Plugin versions for the whole project: AGP 8.7 with Kotlin 1.9.25 (the compiler build-here.sh
// uses, so both builds compile the same sources with the same language version).
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "1.9.25" apply false
}
