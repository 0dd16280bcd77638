function Remove-PhotoBulk {
    <#
    .SYNOPSIS
    Removes users' AD thumbnailPhoto, each backed up first, so Restore-PhotoBulk can put it back byte for byte.
    .DESCRIPTION
    For each user (sAMAccountName by default, see -MatchBy) the photo stored in thumbnailPhoto is saved to -BackupPath and
    then removed. ConfirmImpact is High: PowerShell asks for each user unless -Confirm:$false; -WhatIf shows who would lose
    a photo and writes nothing. One PhotoBulk.Result per user (Status Removed, BackupId); failures are non-terminating
    errors (ErrorId PhotoBulk.<kind>, the result as TargetObject) and the others go on.
    .PARAMETER Identity
    The users. Binds SamAccountName / UserPrincipalName from Get-ADUser output or a CSV.
    .PARAMETER MatchBy
    Which AD attribute -Identity names: SamAccountName (default), UserPrincipalName, Mail or EmployeeId.
    .PARAMETER Server
    A domain controller (host name, or an ldaps:// / ldap:// URL). With none, one is found in DNS (SRV _ldap._tcp.dc._msdcs of -Domain).
    .PARAMETER Domain
    The AD DNS domain whose domain controllers are looked up when -Server is absent (default: USERDNSDOMAIN, the Kerberos ticket's realm).
    .PARAMETER DnsServer
    Ask this DNS server (IP or IP:PORT) for the domain controllers instead of the system's resolver.
    .PARAMETER Credential
    The account that writes thumbnailPhoto. Its password goes only through the sidecar's pipe. With none, the sidecar signs in as you (Kerberos: your Windows logon, or a kinit ticket on Linux/macOS), as Set-ADUser does.
    .PARAMETER CaFile
    A PEM file with the CA of the domain controller's certificate, when the system store does not have it.
    .PARAMETER SearchBase
    Where users are looked up.
    .PARAMETER BackupPath
    Where the removed photos are kept (required: nothing is removed without a backup).
    .EXAMPLE
    Remove-PhotoBulk -Identity john.smith -BackupPath D:\PhotoBackups
    .EXAMPLE
    Get-ADUser -Filter 'Enabled -eq $false' | Remove-PhotoBulk -Server dc1 -Credential $cred -BackupPath D:\PhotoBackups -Confirm:$false

    Removes the photos of disabled accounts without asking per user; each is backed up first.
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'High')]
    [OutputType('PhotoBulk.Result')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('SamAccountName', 'UserPrincipalName')][string[]]$Identity,
        [ValidateSet('SamAccountName', 'UserPrincipalName', 'Mail', 'EmployeeId')][string]$MatchBy = 'SamAccountName',
        [string]$Server, [string]$Domain, [string]$DnsServer, [string]$SearchBase,
        [System.Management.Automation.PSCredential][System.Management.Automation.Credential()]$Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [Parameter(Mandatory = $true)][string]$BackupPath
    )
    begin { $connected = $false }
    process {
        foreach ($id in $Identity) {
            if (-not $PSCmdlet.ShouldProcess($id, 'Remove the AD thumbnailPhoto (backed up first)')) { continue }
            if (-not $connected) {
                Connect-PhotoBulkDirectory -Cmdlet $PSCmdlet -Server $Server -Domain $Domain -DnsServer $DnsServer -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile -BackupPath $BackupPath
                $connected = $true
            }
            Invoke-PhotoBulkPhotoWrite -Cmdlet $PSCmdlet -Method 'photo.remove' -Status 'Removed' -Params ([ordered]@{ identity = $id; matchBy = $MatchBy.ToLowerInvariant() })
        }
    }
}
